//! The auth flows with mail, end to end against a real SMTP server (aiosmtpd on loopback):
//! verification, password reset and email change (tokens from the received mail, working once,
//! revoking earlier tokens where PocketBase does), no account enumeration, the resend window,
//! impersonation; and the hostile cases: tokens of one kind used as another, replays, taken
//! addresses, garbage.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, TestApp};
use crate::smtp::{messages, send_mail_through, start_smtp, Smtp};

/// A received mail: (To, Subject, text part, html part).
struct Mail {
    to: String,
    subject: String,
    from: String,
    text: String,
    html: String,
}

fn parse(raw: &str) -> Mail {
    let m = mailparse::parse_mail(raw.as_bytes()).expect("a mail");
    let header = |name: &str| {
        m.headers.iter().find(|h| h.get_key_ref().eq_ignore_ascii_case(name)).map(|h| h.get_value())
    };
    let mut text = String::new();
    let mut html = String::new();
    let mut parts = vec![&m];
    while let Some(p) = parts.pop() {
        parts.extend(p.subparts.iter());
        match p.ctype.mimetype.as_str() {
            "text/plain" => text = p.get_body().expect("text"),
            "text/html" => html = p.get_body().expect("html"),
            _ => {}
        }
    }
    Mail {
        to: header("To").unwrap_or_default(),
        subject: header("Subject").unwrap_or_default(),
        from: header("From").unwrap_or_default(),
        text,
        html,
    }
}

/// Waits for the `n`-th mail and returns all so far.
async fn mails(smtp: &Smtp, n: usize) -> Vec<Mail> {
    let got =
        eventually(Duration::from_secs(20), || async { messages(smtp.maildir.path()).len() >= n })
            .await;
    assert!(got, "mail {n} arrived");
    messages(smtp.maildir.path()).iter().map(|m| parse(m)).collect()
}

/// The token of a confirmation link (`…/confirm-<what>/<token>`) in a mail.
fn token_in(mail: &Mail, what: &str) -> String {
    let marker = format!("/confirm-{what}/");
    let at = mail.html.find(&marker).unwrap_or_else(|| panic!("{marker} in {}", mail.html));
    mail.html[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect()
}

fn claims(token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(&[]), &v).expect("a JWT").claims
}

async fn setup() -> (Smtp, TestApp, String) {
    let smtp = start_smtp().await;
    let app = spawn_app().await;
    let su = app.su_token().await;
    let meta = json!({"appName": "Acme", "appURL": "http://app.test",
                      "senderName": "Acme Support", "senderAddress": "support@acme.test"});
    send_mail_through(&app, &su, &smtp, meta).await;
    (smtp, app, su)
}

async fn email_jobs(app: &TestApp, su: &str) -> i64 {
    app.get("/api/jobs?kind=email", Some(su)).await.1["totalItems"].as_i64().unwrap_or(-1)
}

fn code(body: &Value, field: &str) -> String {
    body["data"][field]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn verification_mails_a_token_that_verifies() {
    let (smtp, app, su) = setup().await;
    let (id, auth) = app.create_user("alice@example.com", "password123").await;
    let path = "/api/collections/users/request-verification";

    // Bad input names the field; unknown and verified addresses answer the same 204, no mail.
    for (body, c) in [
        (json!({}), "validation_required"),
        (json!({"email": ""}), "validation_required"),
        (json!({"email": "not-an-email"}), "validation_is_email"),
    ] {
        let (status, res) = app.post(path, None, body).await;
        assert_eq!((status, code(&res, "email")), (StatusCode::BAD_REQUEST, c.into()), "{res}");
    }
    let (status, _) = app.post(path, None, json!({"email": "nobody@example.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(email_jobs(&app, &su).await, 0, "no mail for an unknown address");
    let (status, res) = app
        .post("/api/collections/_superusers/request-verification", None, json!({"email": "x@y.z"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");

    let (status, _) = app.post(path, None, json!({"email": "alice@example.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Within the resend window a second request sends nothing more.
    let (status, _) = app.post(path, None, json!({"email": "alice@example.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(email_jobs(&app, &su).await, 1);
    let all = mails(&smtp, 1).await;
    let mail = &all[0];
    assert!(mail.to.contains("alice@example.com"), "{}", mail.to);
    assert!(mail.from.contains("Acme Support") && mail.from.contains("support@acme.test"));
    assert_eq!(mail.subject, "Confirm your email for Acme");
    assert!(mail.html.contains("http://app.test/_/#/auth/confirm-verification/"), "{}", mail.html);
    assert!(mail.text.contains("http://app.test/_/#/auth/confirm-verification/"), "{}", mail.text);
    let token = token_in(mail, "verification");
    let c = claims(&token);
    assert_eq!(
        (c["type"].as_str(), c["id"].as_str(), c["email"].as_str(), c["collectionId"].as_str()),
        (
            Some("verification"),
            Some(id.as_str()),
            Some("alice@example.com"),
            Some("_pb_users_auth_")
        )
    );

    // Not an auth token: a verification token authorises nothing.
    let (status, _) =
        app.post("/api/collections/users/auth-refresh", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Garbage, blank and auth tokens are refused with the field.
    let confirm = "/api/collections/users/confirm-verification";
    for (t, c) in [
        ("", "validation_required"),
        ("bad.token.here", "validation_invalid_token_claims"),
        (auth.as_str(), "validation_invalid_token_claims"),
    ] {
        let (status, res) = app.post(confirm, None, json!({"token": t})).await;
        assert_eq!((status, code(&res, "token")), (StatusCode::BAD_REQUEST, c.into()), "{res}");
    }
    // A forged token (right claims, wrong key) is refused.
    let forged = {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        parts.join(".")
    };
    let (status, res) = app.post(confirm, None, json!({"token": forged})).await;
    assert_eq!(
        (status, code(&res, "token")),
        (StatusCode::BAD_REQUEST, "validation_invalid_token".into())
    );
    // Another collection's endpoint refuses it.
    let (status, _) = app
        .post("/api/collections/_superusers/confirm-verification", None, json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, res) = app.post(confirm, None, json!({"token": token})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{res}");
    let (_, me) = app.get(&format!("/api/collections/users/records/{id}"), Some(&auth)).await;
    assert_eq!(me["verified"], true, "{me}");
    // Again: nothing to do, still 204; the old auth token still works (no password change).
    let (status, _) = app.post(confirm, None, json!({"token": token})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.post("/api/collections/users/auth-refresh", Some(&auth), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Verified: no more verification mail.
    let (status, _) = app.post(path, None, json!({"email": "alice@example.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(email_jobs(&app, &su).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_password_reset_token_works_once_and_revokes_old_tokens() {
    let (smtp, app, su) = setup().await;
    let (id, auth) = app.create_user("carol@example.com", "password123").await;
    let (status, _) = app
        .post(
            "/api/collections/users/request-password-reset",
            None,
            json!({"email": "nobody@x.io"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(email_jobs(&app, &su).await, 0);
    let (status, _) = app
        .post(
            "/api/collections/users/request-password-reset",
            None,
            json!({"email": "carol@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let all = mails(&smtp, 1).await;
    assert_eq!(all[0].subject, "Your Acme password reset");
    let token = token_in(&all[0], "password-reset");
    assert_eq!(claims(&token)["type"], "passwordReset");

    let confirm = "/api/collections/users/confirm-password-reset";
    let (status, res) = app.post(confirm, None, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for f in ["token", "password", "passwordConfirm"] {
        assert_eq!(code(&res, f), "validation_required", "{res}");
    }
    let (_, res) = app
        .post(
            confirm,
            None,
            json!({"token": token, "password": "newpass123", "passwordConfirm": "other12345"}),
        )
        .await;
    assert_eq!(code(&res, "passwordConfirm"), "validation_values_mismatch", "{res}");
    let (_, res) = app
        .post(
            confirm,
            None,
            json!({"token": token, "password": "short", "passwordConfirm": "short"}),
        )
        .await;
    assert_eq!(code(&res, "password"), "validation_length_out_of_range", "{res}");
    let long = "x".repeat(80);
    let (status, res) = app
        .post(confirm, None, json!({"token": token, "password": long, "passwordConfirm": long}))
        .await;
    assert_eq!(
        (status, code(&res, "password")),
        (StatusCode::BAD_REQUEST, "validation_invalid_value".into())
    );
    // An auth token is no reset token.
    let (_, res) = app
        .post(
            confirm,
            None,
            json!({"token": auth, "password": "newpass123", "passwordConfirm": "newpass123"}),
        )
        .await;
    assert_eq!(code(&res, "token"), "validation_invalid_token", "{res}");

    let ok = json!({"token": token, "password": "newpass123", "passwordConfirm": "newpass123"});
    let (status, res) = app.post(confirm, None, ok.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{res}");
    // Once only; the old auth token is revoked; the new password works; the address is
    // verified (the token went to it).
    let (status, res) = app.post(confirm, None, ok).await;
    assert_eq!(
        (status, code(&res, "token")),
        (StatusCode::BAD_REQUEST, "validation_invalid_token".into())
    );
    let (status, _) = app.post("/api/collections/users/auth-refresh", Some(&auth), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = app.login("users", "carol@example.com", "newpass123").await;
    let (_, me) = app.get(&format!("/api/collections/users/records/{id}"), Some(&fresh)).await;
    assert_eq!(me["verified"], true, "{me}");
    let (status, _) = app
        .post(
            "/api/collections/users/auth-with-password",
            None,
            json!({"identity": "carol@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the old password is gone");
    app.stop().await;
}

#[tokio::test]
async fn an_email_change_is_confirmed_from_the_new_address() {
    let (smtp, app, su) = setup().await;
    let (id, auth) = app.create_user("dave@example.com", "password123").await;
    let (_, bob) = app.create_user("bob@example.com", "password123").await;
    let path = "/api/collections/users/request-email-change";
    let (status, _) = app.post(path, None, json!({"newEmail": "dave2@example.com"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, res) = app.post(path, Some(&su), json!({"newEmail": "dave2@example.com"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    for (body, c) in [
        (json!({"newEmail": ""}), "validation_required"),
        (json!({"newEmail": "nope"}), "validation_is_email"),
        (json!({"newEmail": "bob@example.com"}), "validation_invalid_new_email"),
        (json!({"newEmail": "dave@example.com"}), "validation_not_in_invalid"),
    ] {
        let (status, res) = app.post(path, Some(&auth), body).await;
        assert_eq!((status, code(&res, "newEmail")), (StatusCode::BAD_REQUEST, c.into()), "{res}");
    }
    let (status, _) = app.post(path, Some(&auth), json!({"newEmail": "dave2@example.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let all = mails(&smtp, 1).await;
    assert!(all[0].to.contains("dave2@example.com"), "to the new address: {}", all[0].to);
    let token = token_in(&all[0], "email-change");
    let c = claims(&token);
    assert_eq!(
        (c["email"].as_str(), c["newEmail"].as_str()),
        (Some("dave@example.com"), Some("dave2@example.com"))
    );

    let confirm = "/api/collections/users/confirm-email-change";
    let (_, res) = app.post(confirm, None, json!({"token": token, "password": "wrongpass1"})).await;
    assert_eq!(code(&res, "password"), "validation_invalid_password", "{res}");
    let (_, res) = app.post(confirm, None, json!({"token": bob, "password": "password123"})).await;
    assert_eq!(code(&res, "token"), "validation_invalid_token_payload", "{res}");
    let (status, res) =
        app.post(confirm, None, json!({"token": token, "password": "password123"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{res}");
    let fresh = app.login("users", "dave2@example.com", "password123").await;
    let (_, me) = app.get(&format!("/api/collections/users/records/{id}"), Some(&fresh)).await;
    assert_eq!(
        (me["email"].as_str(), me["verified"].as_bool()),
        (Some("dave2@example.com"), Some(true))
    );
    // The email changed: old tokens are revoked, the confirmation token too.
    let (status, _) = app.post("/api/collections/users/auth-refresh", Some(&auth), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, res) =
        app.post(confirm, None, json!({"token": token, "password": "password123"})).await;
    assert_eq!(
        (status, code(&res, "token")),
        (StatusCode::BAD_REQUEST, "validation_invalid_token".into())
    );
    assert_eq!(email_jobs(&app, &su).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn superusers_impersonate_with_tokens_that_do_not_refresh() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (id, user) = app.create_user("erin@example.com", "password123").await;
    let path = format!("/api/collections/users/impersonate/{id}");
    let (status, _) = app.post(&path, None, json!({"duration": 60})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, res) = app.post(&path, Some(&user), json!({"duration": 60})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    let (status, res) = app.post(&path, Some(&su), json!({"duration": -5})).await;
    assert_eq!(
        (status, code(&res, "duration")),
        (StatusCode::BAD_REQUEST, "validation_min_greater_equal_than_required".into())
    );
    let (status, _) = app.post(&path, Some(&su), json!({"duration": "abc"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        app.post("/api/collections/users/impersonate/nosuchrecord123", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, res) = app.post(&path, Some(&su), json!({"duration": 60})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["record"]["email"], "erin@example.com", "{res}");
    let token = res["token"].as_str().expect("token").to_string();
    let c = claims(&token);
    assert_eq!((c["refreshable"].as_bool(), c["type"].as_str()), (Some(false), Some("auth")));
    let exp = c["exp"].as_i64().expect("exp");
    let now = chrono::Utc::now().timestamp();
    assert!((now + 55..=now + 65).contains(&exp), "{exp} vs {now}");
    // It acts as the user, and refreshing gives the same token back.
    let (status, _) = app.get(&format!("/api/collections/users/records/{id}"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, res) =
        app.post("/api/collections/users/auth-refresh", Some(&token), json!({})).await;
    assert_eq!((status, res["token"].as_str()), (StatusCode::OK, Some(token.as_str())), "{res}");
    // A normal token refreshes into a new one that is refreshable.
    let (_, res) = app.post("/api/collections/users/auth-refresh", Some(&user), json!({})).await;
    assert_eq!(claims(res["token"].as_str().expect("token"))["refreshable"], true);
    // Without a duration: the collection's auth token duration.
    let (_, res) = app.post(&path, Some(&su), json!({})).await;
    let exp = claims(res["token"].as_str().expect("token"))["exp"].as_i64().expect("exp");
    assert!(exp > now + 400_000, "{exp}");
    app.stop().await;
}

#[tokio::test]
async fn a_one_time_code_by_mail_logs_in_once() {
    let (smtp, app, su) = setup().await;
    // PocketBase's system collections of the auth flows exist, superusers only but for owners.
    for name in ["_otps", "_mfas", "_externalAuths", "_authOrigins"] {
        let (status, c) = app.get(&format!("/api/collections/{name}"), Some(&su)).await;
        assert_eq!((status, c["system"].as_bool()), (StatusCode::OK, Some(true)), "{name}: {c}");
    }
    let request = "/api/collections/users/request-otp";
    let (status, res) = app.post(request, None, json!({"email": "x@example.com"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "disabled by default: {res}");
    let (_, users) = app.get("/api/collections/users", Some(&su)).await;
    let mut otp = users["otp"].clone();
    otp["enabled"] = json!(true);
    otp["length"] = json!(6);
    let (status, res) = app.patch("/api/collections/users", Some(&su), json!({"otp": otp})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (_, methods) = app.get("/api/collections/users/auth-methods", None).await;
    assert_eq!(methods["otp"], json!({"enabled": true, "duration": 180}), "{methods}");

    let (id, old_token) = app.create_user("olga@example.com", "password123").await;
    // An unknown address gets an id too (no enumeration), which logs nobody in.
    let (status, res) = app.post(request, None, json!({"email": "nobody@example.com"})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let fake = res["otpId"].as_str().expect("otpId").to_string();
    assert_eq!(fake.len(), 15);
    let (status, res) = app.post(request, None, json!({"email": "olga"})).await;
    assert_eq!(
        (status, code(&res, "email")),
        (StatusCode::BAD_REQUEST, "validation_is_email".into())
    );
    let (status, res) = app.post(request, None, json!({"email": "olga@example.com"})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let otp_id = res["otpId"].as_str().expect("otpId").to_string();
    let all = mails(&smtp, 1).await;
    assert_eq!(all[0].subject, "Your Acme sign-in code");
    let code_in_mail: String = {
        let at = all[0].text.find("code is ").expect("the code") + "code is ".len();
        all[0].text[at..].chars().take_while(char::is_ascii_digit).collect()
    };
    assert_eq!(code_in_mail.len(), 6, "{}", all[0].text);
    // The stored code is hashed, and hidden even from superusers' reads.
    let (_, row) = app.get(&format!("/api/collections/_otps/records/{otp_id}"), Some(&su)).await;
    assert_eq!(row["recordRef"], id.as_str(), "{row}");
    assert!(!row.to_string().contains(&code_in_mail), "{row}");

    let login = "/api/collections/users/auth-with-otp";
    let (status, res) = app.post(login, None, json!({})).await;
    assert_eq!(
        (status, code(&res, "otpId")),
        (StatusCode::BAD_REQUEST, "validation_required".into())
    );
    let (status, res) = app.post(login, None, json!({"otpId": fake, "password": "123456"})).await;
    assert_eq!(
        (status, res["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid or expired OTP."))
    );
    let wrong = if code_in_mail == "000000" { "111111" } else { "000000" };
    let (status, _) = app.post(login, None, json!({"otpId": otp_id, "password": wrong})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another auth collection's endpoint does not take it.
    let (status, _) = app
        .post(
            "/api/collections/_superusers/auth-with-otp",
            None,
            json!({"otpId": otp_id, "password": code_in_mail}),
        )
        .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST, "{status}");

    let (status, res) =
        app.post(login, None, json!({"otpId": otp_id, "password": code_in_mail})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["record"]["id"], id.as_str());
    assert_eq!(res["record"]["verified"], true, "the code went to the address: {res}");
    let token = res["token"].as_str().expect("token").to_string();
    let (status, _) =
        app.post("/api/collections/users/auth-refresh", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Once; and the password set before the address was proven is gone (with its tokens).
    let (status, _) =
        app.post(login, None, json!({"otpId": otp_id, "password": code_in_mail})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        app.post("/api/collections/users/auth-refresh", Some(&old_token), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/api/collections/users/auth-with-password",
            None,
            json!({"identity": "olga@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Brute force: the sixth attempt at a record's codes is refused, even with the right code.
    let (_, res) = app.post(request, None, json!({"email": "olga@example.com"})).await;
    let otp_id = res["otpId"].as_str().expect("otpId").to_string();
    let all = mails(&smtp, 2).await;
    let mail = all.iter().find(|m| !m.text.contains(&code_in_mail)).expect("the second code");
    let at = mail.text.find("code is ").expect("code") + "code is ".len();
    let right: String = mail.text[at..].chars().take_while(char::is_ascii_digit).collect();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, _) = app.post(login, None, json!({"otpId": otp_id, "password": wrong})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, res) = app.post(login, None, json!({"otpId": otp_id, "password": right})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{res}");
    assert_eq!(res["message"], "Too many attempts, please try again later with a new OTP.");
    // The owner sees no codes of others, guests none at all.
    let (status, list) = app.get("/api/collections/_otps/records", None).await;
    assert_eq!((status, list["totalItems"].as_i64()), (StatusCode::OK, Some(0)), "{list}");
    app.stop().await;
}

/// The code in an OTP mail.
fn otp_code(mail: &Mail) -> String {
    let at = mail.text.find("code is ").expect("the code") + "code is ".len();
    mail.text[at..].chars().take_while(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn mfa_asks_a_second_method_before_the_token() {
    let (smtp, app, su) = setup().await;
    let coll = "/api/collections/users";
    // MFA needs a second method besides the password; its settings are checked.
    let (status, res) = app.patch(coll, Some(&su), json!({"mfa": {"enabled": true}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["mfa"]["enabled"]["code"], "validation_mfa_not_enough_auths", "{res}");
    let (_, res) = app
        .patch(
            coll,
            Some(&su),
            json!({"mfa": {"enabled": true, "duration": 5, "rule": "email ~~ 1"},
                                       "otp": {"enabled": true}}),
        )
        .await;
    assert_eq!(
        res["data"]["mfa"]["duration"]["code"], "validation_min_greater_equal_than_required",
        "{res}"
    );
    assert_eq!(res["data"]["mfa"]["rule"]["code"], "validation_invalid_rule", "{res}");
    let (status, res) = app
        .patch(
            coll,
            Some(&su),
            json!({"mfa": {"enabled": true, "duration": 600, "rule": ""},
                                       "otp": {"enabled": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (_, methods) = app.get(&format!("{coll}/auth-methods"), None).await;
    assert_eq!(methods["mfa"], json!({"enabled": true, "duration": 600}));

    let (id, _) = {
        let (status, body) = app
            .post(
                &format!("{coll}/records"),
                None,
                json!({"email": "mia@example.com", "password": "password123", "passwordConfirm": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["id"].as_str().expect("id").to_string(), ())
    };
    let password = json!({"identity": "mia@example.com", "password": "password123"});
    let login = format!("{coll}/auth-with-password");
    // The first factor: a bare 401 with the session id, no token.
    let (status, res) = app.post(&login, None, password.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{res}");
    let mfa_id = res["mfaId"].as_str().expect("mfaId").to_string();
    assert_eq!(res.as_object().map(|o| o.len()), Some(1), "no envelope, no token: {res}");
    let (_, rows) = app.get("/api/collections/_mfas/records", Some(&su)).await;
    assert_eq!(rows["items"][0]["method"], "password", "{rows}");
    assert_eq!(rows["items"][0]["recordRef"], id.as_str(), "{rows}");

    // The same method again is not a second factor; garbage and foreign sessions are refused.
    let mut again = password.clone();
    again["mfaId"] = json!(mfa_id);
    let (status, res) = app.post(&login, None, again).await;
    assert_eq!(
        (status, res["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("A different authentication method is required."))
    );
    let mut garbage = password.clone();
    garbage["mfaId"] = json!("nosuchsession00");
    let (status, res) = app.post(&login, None, garbage).await;
    assert_eq!(
        (status, res["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid or expired MFA session."))
    );
    let mut not_text = password.clone();
    not_text["mfaId"] = json!(123);
    let (status, _) = app.post(&login, None, not_text).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let noah = json!({"email": "noah@example.com", "password": "password123", "passwordConfirm": "password123"});
    assert_eq!(app.post(&format!("{coll}/records"), None, noah).await.0, StatusCode::OK);
    let (_, res) = app
        .post(
            &login,
            None,
            json!({"identity": "noah@example.com", "password": "password123", "mfaId": mfa_id}),
        )
        .await;
    assert_eq!(res["message"], "Invalid MFA session.", "{res}");

    // The second factor by another method completes the login, once.
    let (_, res) =
        app.post(&format!("{coll}/request-otp"), None, json!({"email": "mia@example.com"})).await;
    let otp_id = res["otpId"].as_str().expect("otpId").to_string();
    let all = mails(&smtp, 1).await;
    let code_sent = otp_code(&all[0]);
    let (status, res) = app
        .post(
            &format!("{coll}/auth-with-otp"),
            None,
            json!({"otpId": otp_id, "password": code_sent, "mfaId": mfa_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["record"]["id"], id.as_str());
    let token = res["token"].as_str().expect("token").to_string();
    let (status, _) = app.post(&format!("{coll}/auth-refresh"), Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "a token from MFA refreshes");
    let (_, rows) = app.get("/api/collections/_mfas/records", Some(&su)).await;
    let left =
        rows["items"].as_array().map(|a| a.iter().filter(|r| r["id"] == mfa_id.as_str()).count());
    assert_eq!(left, Some(0), "the session is gone: {rows}");

    // mfa.rule: only matching records need the second factor.
    let (status, res) = app.patch(coll, Some(&su), json!({"mfa": {"rule": "email ~ 'vip'"}})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, res) = app.post(&login, None, password).await;
    assert_eq!(status, StatusCode::OK, "mia is not a vip: {res}");
    app.stop().await;
}

/// A password login from a client calling itself `agent`.
async fn login_as(app: &TestApp, email: &str, agent: &str) -> StatusCode {
    app.client
        .post(format!("{}/api/collections/users/auth-with-password", app.url))
        .header("User-Agent", agent)
        .json(&json!({"identity": email, "password": "password123"}))
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn a_login_from_a_new_device_is_remembered_and_announced() {
    let (smtp, app, su) = setup().await;
    let (id, token) = app.create_user("pia@example.com", "password123").await;
    // The first login ever (signing up): remembered, no mail (nothing to compare with).
    let jobs_before = email_jobs(&app, &su).await;
    assert_eq!(jobs_before, 0);
    let (_, mine) = app.get("/api/collections/_authOrigins/records", Some(&token)).await;
    assert_eq!(mine["totalItems"], 1, "{mine}");
    assert_eq!(mine["items"][0]["recordRef"], id.as_str());
    // Devices never seen: an alert each, naming the device.
    assert_eq!(login_as(&app, "pia@example.com", "Phone/1.0").await, StatusCode::OK);
    assert_eq!(login_as(&app, "pia@example.com", "Laptop/2.0").await, StatusCode::OK);
    assert_eq!(email_jobs(&app, &su).await, 2);
    let all = mails(&smtp, 2).await;
    assert!(all
        .iter()
        .all(|m| m.subject.contains("New sign-in") && m.to.contains("pia@example.com")));
    assert!(all.iter().any(|m| m.text.contains("Laptop/2.0")), "{}", all[0].text);
    assert!(all.iter().any(|m| m.text.contains("Phone/1.0")), "{}", all[0].text);
    // Seen before: no news.
    assert_eq!(login_as(&app, "pia@example.com", "Laptop/2.0").await, StatusCode::OK);
    assert_eq!(login_as(&app, "pia@example.com", "Phone/1.0").await, StatusCode::OK);
    assert_eq!(email_jobs(&app, &su).await, 2);
    let (_, mine) = app.get("/api/collections/_authOrigins/records", Some(&token)).await;
    assert_eq!(mine["totalItems"], 3, "{mine}");
    // Others see none of it; alerts can be turned off.
    let (_, other) = app.create_user("quin@example.com", "password123").await;
    let (_, theirs) = app.get("/api/collections/_authOrigins/records", Some(&other)).await;
    assert!(theirs["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|o| o["recordRef"] != id.as_str()));
    let (status, _) = app.get("/api/collections/_authOrigins/records", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, res) = app
        .patch("/api/collections/users", Some(&su), json!({"authAlert": {"enabled": false}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(login_as(&app, "pia@example.com", "Tablet/3.0").await, StatusCode::OK);
    assert_eq!(email_jobs(&app, &su).await, 2, "no alert once turned off");
    // A new password: every device must sign in anew (they are forgotten).
    let (status, res) = app
        .patch(
            &format!("/api/collections/users/records/{id}"),
            Some(&su),
            json!({"password": "password456", "passwordConfirm": "password456"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (_, left) = app
        .get(
            &format!("/api/collections/_authOrigins/records?filter=recordRef%3D%27{id}%27"),
            Some(&su),
        )
        .await;
    assert_eq!(left["totalItems"], 0, "{left}");
    app.stop().await;
}
