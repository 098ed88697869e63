//! Auth: sign-up, password login, auth-refresh, token transport and validation (forged,
//! expired, garbage), password change revoking tokens, email visibility, `verified`, JWT claims.
//! Expected answers were checked against PocketBase 0.40.6.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use basalt::model::collection::TokenKind;

use crate::helpers::{spawn_app, TestApp, SU_EMAIL};

const PW: &str = "password123";

fn claims(token: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(&[]), &v).expect("a JWT").claims
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `claims` with the real key of a users record (tokenKey + collection secret), read from
/// the running server's store: lets the tests build expired-but-authentic tokens.
async fn sign_with_real_key(app: &TestApp, email: &str, claims: &Value) -> String {
    let schema = app.svc.schema();
    let users = schema.get("users").expect("users").clone();
    let row = app.svc.find_record_by("users", "email", email).await.expect("store").expect("user");
    let token_key = row["tokenKey"].as_str().expect("tokenKey");
    let secret = &users.auth.as_ref().expect("auth options").tokens.get(TokenKind::Auth).secret;
    let key = format!("{token_key}{secret}");
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("sign")
}

/// The user's own record, viewable only with a token that authenticates as them.
async fn whoami(app: &TestApp, id: &str, header: Option<&str>) -> StatusCode {
    app.get(&format!("/api/collections/users/records/{id}"), header).await.0
}

#[tokio::test]
async fn signup_validation() {
    let app = spawn_app().await;
    let p = "/api/collections/users/records";
    let (status, rec) = app
        .post(p, None, json!({"email": "new@example.com", "password": PW, "passwordConfirm": PW}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["collectionName"], "users");
    assert!(rec.get("password").is_none() && rec.get("tokenKey").is_none(), "{rec}");
    assert!(
        rec.get("email").is_none(),
        "a guest creator is not the owner; emailVisibility off: {rec}"
    );
    assert_eq!((&rec["verified"], &rec["emailVisibility"]), (&json!(false), &json!(false)));
    let cases = [
        (
            json!({"email": "a@example.com", "password": PW, "passwordConfirm": "different1"}),
            "passwordConfirm",
            "validation_values_mismatch",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "passwordConfirm": "other"}),
            "passwordConfirm",
            "validation_values_mismatch",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "passwordConfirm": "short"}),
            "password",
            "validation_min_text_constraint",
        ),
        (json!({"email": "a@example.com"}), "password", "validation_required"),
        (json!({"password": PW, "passwordConfirm": PW}), "email", "validation_required"),
        (
            json!({"email": "nope", "password": PW, "passwordConfirm": PW}),
            "email",
            "validation_is_email",
        ),
        (
            json!({"email": "new@example.com", "password": PW, "passwordConfirm": PW}),
            "email",
            "validation_not_unique",
        ),
        (
            json!({"email": "v@example.com", "password": PW, "passwordConfirm": PW, "verified": true}),
            "verified",
            "validation_values_mismatch",
        ),
    ];
    for (body, key, code) in cases {
        let (status, res) = app.post(p, None, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(res["data"][key]["code"], code, "{body}: {res}");
        assert_eq!(res["message"], "Failed to create record.");
    }
    let (status, _) = app.post(p, None, json!({"email": "v@example.com", "password": PW, "passwordConfirm": PW, "verified": false})).await;
    assert_eq!(status, StatusCode::OK, "verified=false is not a change");
    let su = app.su_token().await;
    let (status, rec) = app
        .post(p, Some(&su), json!({"email": "sv@example.com", "password": PW, "passwordConfirm": PW, "verified": true}))
        .await;
    assert_eq!(
        (status, &rec["verified"]),
        (StatusCode::OK, &json!(true)),
        "superusers may set verified"
    );
    app.stop().await;
}

#[tokio::test]
async fn password_login() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Mixed@Example.com", PW).await;
    let app_ref = &app;
    let login = |identity: &str, password: &str| {
        let body = json!({"identity": identity, "password": password});
        async move { app_ref.post("/api/collections/users/auth-with-password", None, body).await }
    };
    let (status, res) = login("Mixed@Example.com", PW).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["record"]["id"], id.as_str());
    assert_eq!(res["record"]["email"], "Mixed@Example.com", "the owner sees their email");
    assert!(res["record"].get("password").is_none() && res["record"].get("tokenKey").is_none());
    assert!(res["token"].as_str().is_some_and(|t| t.split('.').count() == 3));
    for (identity, password) in [
        ("Mixed@Example.com", "wrongpassword"),
        ("nobody@example.com", PW),
        ("Mixed@Example.com", ""),
    ] {
        let (status, res) = login(identity, password).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{identity}/{password}: {res}");
        if !password.is_empty() {
            assert_eq!(
                res,
                json!({"data": {}, "message": "Failed to authenticate.", "status": 400})
            );
        }
    }
    let (status, res) = login("", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(res["data"]["identity"]["code"], "validation_required");
    assert_eq!(res["data"]["password"]["code"], "validation_required");
    let (status, res) = app
        .post(
            "/api/collections/users/auth-with-password",
            None,
            json!({"identity": "Mixed@Example.com", "password": PW, "identityField": "name"}),
        )
        .await;
    assert_eq!(
        (status, &res["data"]["identityField"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_in_invalid"))
    );
    let (status, res) = app
        .post(
            "/api/collections/_mfas/auth-with-password",
            None,
            json!({"identity": "x", "password": "y"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(res["message"], "Missing or invalid auth collection context.");
    let (status, res) = app.get("/api/collections/users/auth-methods", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["password"], json!({"enabled": true, "identityFields": ["email"]}));
    assert_eq!(res["emailPassword"], true);
    app.stop().await;
}

/// PocketBase 0.40.6 matches the email identity exactly (its unique index is case-sensitive too,
/// so `A@x.io` and `a@x.io` are two accounts); each login must reach its own record.
#[tokio::test]
async fn email_identity_is_matched_exactly() {
    let app = spawn_app().await;
    let signup =
        |email: &str, pw: &str| json!({"email": email, "password": pw, "passwordConfirm": pw});
    let upper = app.create_id(None, "users", signup("Case@Example.com", PW)).await;
    let lower = app.create_id(None, "users", signup("case@example.com", "otherpassword")).await;
    assert_ne!(upper, lower);
    let body = |identity: &str, password: &str| json!({"identity": identity, "password": password});
    let (status, res) = app
        .post("/api/collections/users/auth-with-password", None, body("Case@Example.com", PW))
        .await;
    assert_eq!((status, &res["record"]["id"]), (StatusCode::OK, &json!(upper)), "{res}");
    let (status, res) = app
        .post(
            "/api/collections/users/auth-with-password",
            None,
            body("case@example.com", "otherpassword"),
        )
        .await;
    assert_eq!((status, &res["record"]["id"]), (StatusCode::OK, &json!(lower)), "{res}");
    let (status, _) = app
        .post("/api/collections/users/auth-with-password", None, body("CASE@EXAMPLE.COM", PW))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no such identity");
    app.stop().await;
}

#[tokio::test]
async fn auth_refresh() {
    let app = spawn_app().await;
    let (id, token) = app.create_user("u@example.com", PW).await;
    let su = app.su_token().await;
    let (status, res) =
        app.post("/api/collections/users/auth-refresh", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["record"]["id"], id.as_str());
    let fresh = res["token"].as_str().expect("token").to_string();
    assert!(claims(&fresh)["exp"].as_i64() >= claims(&token)["exp"].as_i64());
    assert_eq!(whoami(&app, &id, Some(&fresh)).await, StatusCode::OK, "the new token works");
    let (status, res) = app.post("/api/collections/users/auth-refresh", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(res["message"], "The request requires valid record authorization token.");
    let (status, _) =
        app.post("/api/collections/users/auth-refresh", Some("garbage"), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, res) = app.post("/api/collections/users/auth-refresh", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    // PocketBase 0.40.6 names the caller's collection (probed), not the one in the path.
    assert_eq!(res["message"], "The request requires auth record from _superusers collection.");
    let (status, _) =
        app.post("/api/collections/_superusers/auth-refresh", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        app.post("/api/collections/_superusers/auth-refresh", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn token_transport_and_invalid_tokens() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (id, token) = app.create_user("u@example.com", PW).await;
    app.create_collection(
        &su,
        json!({"name": "pub", "listRule": "", "fields": [{"name": "t", "type": "text"}]}),
    )
    .await;
    app.create_collection(&su, json!({"name": "mine", "listRule": "@request.auth.id != ''", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    app.create_record(Some(&su), "mine", json!({"t": "x"})).await;
    assert_eq!(whoami(&app, &id, Some(&token)).await, StatusCode::OK, "raw token");
    assert_eq!(
        whoami(&app, &id, Some(&format!("Bearer {token}"))).await,
        StatusCode::OK,
        "Bearer token"
    );
    assert_eq!(whoami(&app, &id, None).await, StatusCode::NOT_FOUND);
    // Forged: right claims, wrong key. Tampered: payload changed after signing. alg none.
    let c = claims(&token);
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &c,
        &EncodingKey::from_secret(b"wrong key"),
    )
    .expect("sign");
    let parts: Vec<&str> = token.split('.').collect();
    let su_claims = claims(&su);
    let tampered_payload = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &su_claims,
        &EncodingKey::from_secret(b"x"),
    )
    .expect("sign")
    .split('.')
    .nth(1)
    .expect("payload")
    .to_string();
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let expired = sign_with_real_key(&app, "u@example.com", &json!({"id": id, "type": "auth", "collectionId": c["collectionId"], "refreshable": true, "exp": now() - 10})).await;
    let valid_control = sign_with_real_key(&app, "u@example.com", &json!({"id": id, "type": "auth", "collectionId": c["collectionId"], "refreshable": true, "exp": now() + 600})).await;
    let wrong_type = sign_with_real_key(
        &app,
        "u@example.com",
        &json!({"id": id, "type": "file", "collectionId": c["collectionId"], "exp": now() + 600}),
    )
    .await;
    assert_eq!(
        whoami(&app, &id, Some(&valid_control)).await,
        StatusCode::OK,
        "control: a token signed like the server's is accepted"
    );
    for (what, bad) in [
        ("garbage", "garbage".to_string()),
        ("bearer garbage", "Bearer garbage".to_string()),
        ("forged", forged),
        ("tampered", tampered),
        ("alg none", alg_none),
        ("expired", expired),
        ("file token", wrong_type),
        ("empty bearer", "Bearer ".to_string()),
    ] {
        assert_eq!(
            whoami(&app, &id, Some(&bad)).await,
            StatusCode::NOT_FOUND,
            "{what} must be a guest"
        );
        let list = app.list("pub", "", Some(&bad)).await;
        assert_eq!(list["totalItems"], 0, "{what}: public list works as guest");
        assert_eq!(
            app.list("mine", "", Some(&bad)).await["totalItems"],
            0,
            "{what}: rule-filtered list → 0 items"
        );
        let (status, _) = app.get("/api/collections", Some(&bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: auth-required endpoint");
        let (status, _) =
            app.post("/api/collections/users/auth-refresh", Some(&bad), json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: refresh");
    }
    assert_eq!(app.list("mine", "", Some(&token)).await["totalItems"], 1);
    // A deleted user's token is a guest token.
    let (status, _) =
        app.delete(&format!("/api/collections/users/records/{id}"), Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.list("mine", "", Some(&token)).await["totalItems"], 0);
    app.stop().await;
}

#[tokio::test]
async fn password_change_requires_old_password_and_revokes_tokens() {
    let app = spawn_app().await;
    let (id, token) = app.create_user("u@example.com", PW).await;
    let second = app.login("users", "u@example.com", PW).await;
    let path = format!("/api/collections/users/records/{id}");
    let new = "newpassword456";
    let (status, res) =
        app.patch(&path, Some(&token), json!({"password": new, "passwordConfirm": new})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["oldPassword"]["code"], "validation_required");
    let (status, res) = app
        .patch(
            &path,
            Some(&token),
            json!({"password": new, "passwordConfirm": new, "oldPassword": "wrongpassword"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["oldPassword"]["code"], "validation_invalid_old_password");
    let (status, res) = app
        .patch(
            &path,
            Some(&token),
            json!({"password": new, "passwordConfirm": "mismatch1", "oldPassword": PW}),
        )
        .await;
    assert_eq!(
        (status, &res["data"]["passwordConfirm"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_values_mismatch"))
    );
    assert_eq!(
        whoami(&app, &id, Some(&token)).await,
        StatusCode::OK,
        "failed attempts revoke nothing"
    );
    let (status, res) = app
        .patch(
            &path,
            Some(&token),
            json!({"password": new, "passwordConfirm": new, "oldPassword": PW}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    for old in [&token, &second] {
        assert_eq!(whoami(&app, &id, Some(old)).await, StatusCode::NOT_FOUND, "old tokens revoked");
        let (status, _) =
            app.post("/api/collections/users/auth-refresh", Some(old), json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = app
        .post(
            "/api/collections/users/auth-with-password",
            None,
            json!({"identity": "u@example.com", "password": PW}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "old password no longer works");
    let fresh = app.login("users", "u@example.com", new).await;
    assert_eq!(whoami(&app, &id, Some(&fresh)).await, StatusCode::OK);
    // A superuser changes it without oldPassword; that revokes too.
    let su = app.su_token().await;
    let (status, res) =
        app.patch(&path, Some(&su), json!({"password": PW, "passwordConfirm": PW})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(whoami(&app, &id, Some(&fresh)).await, StatusCode::NOT_FOUND);
    app.login("users", "u@example.com", PW).await;
    // Updating other fields keeps tokens valid.
    let t = app.login("users", "u@example.com", PW).await;
    let (status, _) = app.patch(&path, Some(&t), json!({"name": "renamed"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whoami(&app, &id, Some(&t)).await, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn email_visibility_and_verified() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (status, body) = app
        .patch("/api/collections/users", Some(&su), json!({"listRule": "", "viewRule": ""}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (a, ta) = app.create_user("a@example.com", PW).await;
    let (b, tb) = app.create_user("b@example.com", PW).await;
    let email_of = |list: &Value, id: &str| {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r.get("email").cloned())
    };
    let list = app.list("users", "", Some(&tb)).await;
    assert_eq!(email_of(&list, &a), Some(None), "hidden from others: {list}");
    assert_eq!(email_of(&list, &b), Some(Some(json!("b@example.com"))), "shown to the owner");
    let list = app.list("users", "", None).await;
    assert_eq!(email_of(&list, &a), Some(None));
    let list = app.list("users", "", Some(&su)).await;
    assert_eq!(email_of(&list, &a), Some(Some(json!("a@example.com"))), "shown to superusers");
    // Filtering on a hidden email matches nothing for others.
    let list = app
        .list(
            "users",
            &format!("filter={}", crate::helpers::enc("email = 'a@example.com'")),
            Some(&tb),
        )
        .await;
    assert_eq!(list["totalItems"], 0);
    let path = format!("/api/collections/users/records/{a}");
    let (status, _) = app.patch(&path, Some(&ta), json!({"emailVisibility": true})).await;
    assert_eq!(status, StatusCode::OK);
    let list = app.list("users", "", Some(&tb)).await;
    assert_eq!(email_of(&list, &a), Some(Some(json!("a@example.com"))), "visible once opted in");
    let list = app
        .list(
            "users",
            &format!("filter={}", crate::helpers::enc("email = 'a@example.com'")),
            Some(&tb),
        )
        .await;
    assert_eq!(list["totalItems"], 1);
    // verified: owner may not set it, superusers may.
    let (status, res) = app.patch(&path, Some(&ta), json!({"verified": true})).await;
    assert_eq!(
        (status, &res["data"]["verified"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_values_mismatch"))
    );
    let (status, res) = app.patch(&path, Some(&su), json!({"verified": true})).await;
    assert_eq!((status, &res["verified"]), (StatusCode::OK, &json!(true)));
    app.stop().await;
}

#[tokio::test]
async fn jwt_claims_and_superuser_token() {
    let app = spawn_app().await;
    let (id, token) = app.create_user("u@example.com", PW).await;
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let c = claims(&token);
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["type"], "auth");
    assert_eq!(c["collectionId"], "_pb_users_auth_");
    assert_eq!(c["refreshable"], true);
    let exp = c["exp"].as_i64().expect("exp");
    assert!((exp - (now() + 432_000)).abs() < 60, "users tokens last 5 days: {exp}");
    let su = app.su_token().await;
    let sc = claims(&su);
    assert_eq!(sc["collectionId"], "pbc_3142635823");
    assert_eq!(sc["type"], "auth");
    assert!((sc["exp"].as_i64().expect("exp") - (now() + 86_400)).abs() < 60, "superusers: 1 day");
    // The superuser token works on the collections API, a user token does not.
    let (status, _) = app.get("/api/collections", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.send(Method::GET, "/api/collections", Some(&format!("Bearer {su}")), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/api/collections", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Superuser login record and health info.
    let (status, res) = app
        .post(
            "/api/collections/_superusers/auth-with-password",
            None,
            json!({"identity": SU_EMAIL, "password": "wrong-password"}),
        )
        .await;
    assert_eq!(
        (status, &res["message"]),
        (StatusCode::BAD_REQUEST, &json!("Failed to authenticate."))
    );
    let (_, health) = app.get("/api/health", Some(&su)).await;
    assert!(health["data"].get("canBackup").is_some(), "{health}");
    let (_, health) = app.get("/api/health", Some(&token)).await;
    assert_eq!(health["data"], json!({}));
    let (status, health) = app.get("/api/health", None).await;
    assert_eq!(
        (status, health),
        (StatusCode::OK, json!({"code": 200, "data": {}, "message": "API is healthy."}))
    );
    app.stop().await;
}

/// Owners cannot rewrite `tokenKey` or change their `email` directly (PocketBase requires the
/// email-change flow: 400 `email: validation_values_mismatch`); superusers can change email.
/// `password` and `tokenKey` never appear in any response, not even to superusers.
#[tokio::test]
async fn sensitive_auth_fields_are_protected() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (id, token) = app.create_user("a@example.com", PW).await;
    let path = format!("/api/collections/users/records/{id}");
    let (status, res) = app.patch(&path, Some(&token), json!({"tokenKey": "x".repeat(50)})).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(
        whoami(&app, &id, Some(&token)).await,
        StatusCode::OK,
        "tokenKey from a client is ignored"
    );
    let (status, res) = app.patch(&path, Some(&token), json!({"email": "new@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["email"]["code"], "validation_values_mismatch", "{res}");
    let (status, res) =
        app.patch(&path, Some(&token), json!({"password": "$2a$10$abcdefghijklmnopqrstuu"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["oldPassword"]["code"], "validation_required");
    app.login("users", "a@example.com", PW).await;
    let (status, res) = app.patch(&path, Some(&su), json!({"email": "moved@example.com"})).await;
    assert_eq!((status, &res["email"]), (StatusCode::OK, &json!("moved@example.com")), "{res}");
    for token in [Some(su.as_str()), None] {
        let (_, rec) = app.get(&path, token).await;
        assert!(rec.get("password").is_none() && rec.get("tokenKey").is_none(), "{rec}");
    }
    let list = app.list("users", "", Some(&su)).await;
    assert!(
        list["items"][0].get("password").is_none() && list["items"][0].get("tokenKey").is_none(),
        "{list}"
    );
    let list = app.list("_superusers", "", Some(&su)).await;
    assert!(
        list["items"][0].get("password").is_none() && list["items"][0].get("tokenKey").is_none(),
        "{list}"
    );
    app.stop().await;
}
