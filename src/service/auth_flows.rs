//! The auth flows around the password login, as PocketBase 0.40.6 has them: email verification,
//! password reset and email change, each with a signed, expiring token sent by mail (through
//! the job queue: the request never waits on SMTP), and impersonation by superusers.
//!
//! Tokens are JWTs (HS256) with PocketBase's claims, signed with the record's `tokenKey` plus
//! the collection's secret for that kind of token. Nothing stores issued tokens: a password or
//! email change rotates `tokenKey`, which voids every earlier token of the record (so a reset
//! or email-change token works once); a verification token confirms an already verified record
//! as a no-op. Requests for mail answer 204 whether or not the address exists (no account
//! enumeration), and a record gets at most one verification or reset mail per 2 minutes per
//! instance (PocketBase's resend window).
//!
//! Must not: know HTTP, or send mail itself (it enqueues `email` jobs).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::model::collection::{templates, Collection, TokenKind, SUPERUSERS};
use crate::model::field::FieldKind;
use crate::model::request::{AuthRecord, RequestInfo};
use crate::model::ErrorCode;
use crate::service::auth::{same_collection_auth, token_key, unverified_claims};
use crate::service::mail::{Addresses, EmailJob};
use crate::service::params::ViewParams;
use crate::service::passwords::verify_password;
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::jobs::NewJob;
use crate::store::Row;

/// How long a record waits between two verification (or two reset) mails.
pub const RESEND_EVERY: Duration = Duration::from_secs(120);

/// bcrypt reads at most 72 bytes: a longer password would be silently cut.
const MAX_PASSWORD_BYTES: usize = 72;

/// The message of a 400 whose `data` names the fields.
const INVALID_DATA: &str = "An error occurred while validating the submitted data.";

/// `request-verification`, `request-password-reset`: `{"email"}`.
#[derive(Debug, Default, Deserialize)]
pub struct EmailRequest {
    #[serde(default)]
    pub email: String,
}

/// `request-otp`: `{"email"}`; `auth-with-otp`: `{"otpId", "password"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpLogin {
    #[serde(default)]
    pub otp_id: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub mfa_id: Option<Value>,
}

/// Wrong or right, the attempts at one record's codes in `OTP_WINDOW` (PocketBase: 5 per 3
/// minutes, then 429 even with the right code).
pub const OTP_ATTEMPTS: u32 = 5;
pub const OTP_WINDOW: Duration = Duration::from_secs(180);

/// `confirm-verification`: `{"token"}`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenConfirm {
    #[serde(default)]
    pub token: String,
}

/// `confirm-password-reset`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetConfirm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

/// `request-email-change`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailChangeRequest {
    #[serde(default)]
    pub new_email: String,
}

/// `confirm-email-change`.
#[derive(Debug, Default, Deserialize)]
pub struct EmailChangeConfirm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub password: String,
}

/// The mails a flow sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flow {
    Verification,
    PasswordReset,
    EmailChange,
}

impl Flow {
    fn token_kind(self) -> TokenKind {
        match self {
            Flow::Verification => TokenKind::Verification,
            Flow::PasswordReset => TokenKind::PasswordReset,
            Flow::EmailChange => TokenKind::EmailChange,
        }
    }

    /// The JWT `type` claim.
    fn claim(self) -> &'static str {
        match self {
            Flow::Verification => "verification",
            Flow::PasswordReset => "passwordReset",
            Flow::EmailChange => "emailChange",
        }
    }

    /// The collection option holding the template, and the default.
    fn template(self) -> (&'static str, (&'static str, &'static str)) {
        match self {
            Flow::Verification => ("verificationTemplate", templates::VERIFICATION),
            Flow::PasswordReset => ("resetPasswordTemplate", templates::RESET_PASSWORD),
            Flow::EmailChange => ("confirmEmailChangeTemplate", templates::CONFIRM_EMAIL_CHANGE),
        }
    }
}

fn verification_key(coll: &Collection, record: &Row) -> Vec<u8> {
    token_key(coll, record, TokenKind::Verification)
}

fn reset_key(coll: &Collection, record: &Row) -> Vec<u8> {
    token_key(coll, record, TokenKind::PasswordReset)
}

fn email_change_key(coll: &Collection, record: &Row) -> Vec<u8> {
    token_key(coll, record, TokenKind::EmailChange)
}

fn field_error(field: &str, code: ErrorCode, message: &str) -> ServiceError {
    let mut data = Map::new();
    data.insert(field.into(), error_entry(code, message));
    ServiceError::fields(INVALID_DATA, data)
}

fn invalid_token() -> ServiceError {
    field_error("token", ErrorCode::InvalidToken, "Invalid or expired token.")
}

/// Checks an email address as PocketBase does for these bodies: required, then well-formed.
fn check_email(field: &str, email: &str) -> Result<()> {
    if email.trim().is_empty() {
        return Err(field_error(field, ErrorCode::Required, "Cannot be blank."));
    }
    if email.parse::<lettre::Address>().is_err() || email.len() > 255 {
        return Err(field_error(field, ErrorCode::IsEmail, "Must be a valid email address."));
    }
    Ok(())
}

fn record_id(row: &Row) -> &str {
    row.get("id").and_then(Value::as_str).unwrap_or_default()
}

fn record_email(row: &Row) -> &str {
    row.get("email").and_then(Value::as_str).unwrap_or_default()
}

/// HTML-escapes a value put into a template.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces `{RECORD:field}` with the record's visible (not hidden) values, HTML-escaped;
/// hidden fields and unknown placeholders stay as written.
fn fill_record(text: &str, coll: &Collection, record: &Row) -> String {
    let mut out = text.to_string();
    for f in &coll.fields {
        if f.hidden || matches!(f.kind, FieldKind::Password { .. }) || f.name == "tokenKey" {
            continue;
        }
        let key = format!("{{RECORD:{}}}", f.name);
        if !out.contains(&key) {
            continue;
        }
        let value = match record.get(&f.name) {
            Some(Value::String(s)) => escape_html(s),
            Some(Value::Null) | None => String::new(),
            Some(v @ (Value::Array(_) | Value::Object(_))) => escape_html(&v.to_string()),
            Some(v) => v.to_string(),
        };
        out = out.replace(&key, &value);
    }
    out
}

/// A plain-text rendering of a template's HTML for the mail's text part: tags dropped, links
/// as `text (url)`, paragraphs and `<br>` as line breaks, entities of the escaper undone.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut href: Option<String> = None;
    // Line breaks in the source are spaces; only tags break lines.
    let text = |s: &str| s.replace(['\r', '\n'], " ");
    while let Some(start) = rest.find('<') {
        out.push_str(&text(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let tag = &rest[start + 1..start + end];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("p" | "div" | "h1" | "h2" | "h3" | "li" | "tr", true) => out.push('\n'),
            ("a", false) => {
                href = tag
                    .split("href=\"")
                    .nth(1)
                    .and_then(|h| h.split('"').next())
                    .map(str::to_string);
            }
            ("a", true) => {
                if let Some(h) = href.take() {
                    out.push_str(&format!(" ({h})"));
                }
            }
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(&text(rest));
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    // Collapse the template's indentation and blank runs.
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

/// Wraps a template body in the mail layout (a minimal, self-contained HTML page).
fn layout(body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\" />\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\" />\n<style>\n\
         body {{ margin: 0; padding: 20px 30px; color: #1b1b1f; background: #fff; \
         font: 14px/20px system-ui, sans-serif; }}\n\
         p {{ margin: 10px 0; }}\n\
         .btn {{ display: inline-block; padding: 0 20px; line-height: 40px; min-width: 150px; \
         text-align: center; border-radius: 6px; font-weight: bold; color: #fff !important; \
         background: #1b1b1f !important; text-decoration: none !important; }}\n\
         </style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

impl Service {
    /// A signed token of `flow` for `record`, with the extra claims (`email`, `newEmail`).
    fn flow_token(
        &self,
        coll: &Collection,
        record: &Row,
        flow: Flow,
        extra: &[(&str, &str)],
    ) -> Result<String> {
        let kind = flow.token_kind();
        let duration =
            coll.auth.as_ref().map_or(kind.default_duration(), |a| a.tokens.get(kind).duration);
        // serde_json's map keeps keys sorted: the claims come out in PocketBase's order.
        let mut claims = Map::new();
        claims.insert("collectionId".into(), json!(coll.id));
        claims.insert("exp".into(), json!(chrono::Utc::now().timestamp() + duration));
        claims.insert("id".into(), json!(record_id(record)));
        claims.insert("type".into(), json!(flow.claim()));
        for (k, v) in extra {
            claims.insert((*k).into(), json!(v));
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&token_key(coll, record, kind)),
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Renders `flow`'s template for `record` and enqueues the mail to `to`.
    async fn send_flow_mail(
        &self,
        coll: &Collection,
        record: &Row,
        flow: Flow,
        token: &str,
        to: &str,
    ) -> Result<()> {
        let (key, default) = flow.template();
        let stored = coll.auth.as_ref().and_then(|a| a.extra.get(key));
        self.send_template(coll, record, stored, default, &[("{TOKEN}", token)], to).await
    }

    /// Renders a mail template of `coll` (`stored`: its `{subject, body}`, an empty part falls
    /// back to `default`) for `record`, with `{APP_NAME}`, `{APP_URL}`, `{RECORD:…}` and `vars`
    /// replaced, and enqueues it to `to`: HTML in the layout plus a text part.
    async fn send_template(
        &self,
        coll: &Collection,
        record: &Row,
        stored: Option<&Value>,
        (default_subject, default_body): (&str, &str),
        vars: &[(&str, &str)],
        to: &str,
    ) -> Result<()> {
        let settings = self.settings().await?;
        let pick = |name: &str, default: &str| {
            stored
                .and_then(|t| t.get(name))
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(default)
                .to_string()
        };
        let fill = |text: String| {
            let mut text = text
                .replace("{APP_NAME}", &settings.meta.app_name)
                .replace("{APP_URL}", &settings.meta.app_url);
            for (name, value) in vars {
                text = text.replace(name, value);
            }
            fill_record(&text, coll, record)
        };
        let body = fill(pick("body", default_body));
        let mail = EmailJob {
            to: Addresses::One(to.to_string()),
            subject: fill(pick("subject", default_subject)),
            text: html_to_text(&body),
            html: layout(&body),
            ..Default::default()
        };
        self.enqueue_email(&mail).await
    }

    /// Enqueues an `email` job (retried by the queue; the caller does not wait for SMTP).
    pub(crate) async fn enqueue_email(&self, mail: &EmailJob) -> Result<()> {
        let payload =
            serde_json::to_value(mail).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = chrono::Utc::now().timestamp_millis();
        let job = NewJob {
            id: crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15),
            queue: "default".into(),
            kind: crate::service::mail::EMAIL.into(),
            payload,
            priority: 0,
            run_at: now,
            max_attempts: 10,
            unique_key: None,
        };
        self.store.enqueue_jobs(vec![job]).await?;
        self.jobs_ready().notify_one();
        Ok(())
    }

    /// Whether `record` may get another `flow` mail now (and, if so, starts its window).
    fn resend_allowed(&self, coll: &Collection, record: &Row, flow: Flow) -> bool {
        let key = format!("{flow:?}:{}:{}", coll.id, record_id(record));
        self.flow_mails.entry(key).or_insert(()).is_fresh()
    }

    fn forget_resend(&self, coll: &Collection, record: &Row, flow: Flow) {
        self.flow_mails.invalidate(&format!("{flow:?}:{}:{}", coll.id, record_id(record)));
    }

    /// Saves `body` onto `record` as the system would (hashing, tokenKey rotation, realtime,
    /// webhooks), bypassing the collection's rules: the flow's token is the authorization.
    async fn flow_update(
        &self,
        coll: &Collection,
        record: &Row,
        body: Map<String, Value>,
    ) -> Result<()> {
        let info = self.system_info()?;
        self.update_record(&coll.name, record_id(record), body, &ViewParams::default(), &info)
            .await
            .map(drop)
            .map_err(|e| match e {
                ServiceError::BadRequest { data, .. } => ServiceError::fields(INVALID_DATA, data),
                e => e,
            })
    }

    /// `POST /api/collections/{c}/request-verification {email}`: 204 whatever the address.
    pub async fn request_verification(&self, coll: &str, req: EmailRequest) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        check_email("email", &req.email)?;
        if coll.name == SUPERUSERS {
            return Err(ServiceError::bad("All superusers are verified by default."));
        }
        let Some(record) = self.store.find_by_field(&coll, "email", &req.email).await? else {
            return Ok(());
        };
        if record.get("verified") == Some(&Value::Bool(true))
            || !self.resend_allowed(&coll, &record, Flow::Verification)
        {
            return Ok(());
        }
        let email = record_email(&record).to_string();
        let token = self.flow_token(&coll, &record, Flow::Verification, &[("email", &email)])?;
        self.send_flow_mail(&coll, &record, Flow::Verification, &token, &email).await
    }

    /// `POST /api/collections/{c}/confirm-verification {token}`.
    pub async fn confirm_verification(&self, coll: &str, req: TokenConfirm) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        if req.token.is_empty() {
            return Err(field_error("token", ErrorCode::Required, "Cannot be blank."));
        }
        let claims = unverified_claims(&req.token);
        let Some(email) = claims.get("email").and_then(Value::as_str).filter(|e| !e.is_empty())
        else {
            return Err(field_error(
                "token",
                ErrorCode::InvalidTokenClaims,
                "Missing email token claim.",
            ));
        };
        let auth = self.flow_record(&coll, &req.token, "verification", verification_key).await?;
        if record_email(&auth.record) != email {
            return Err(field_error(
                "token",
                ErrorCode::TokenEmailMismatch,
                "The token email doesn't match the record's.",
            ));
        }
        if auth.record.get("verified") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        self.flow_update(&coll, &auth.record, Map::from_iter([("verified".into(), json!(true))]))
            .await?;
        self.forget_resend(&coll, &auth.record, Flow::Verification);
        Ok(())
    }

    /// The record a flow token names, checked: signature under the record's current key for
    /// that kind (so a rotated `tokenKey` voids it), expiry, type, and this collection.
    async fn flow_record(
        &self,
        coll: &Collection,
        token: &str,
        kind: &str,
        key: fn(&Collection, &Row) -> Vec<u8>,
    ) -> Result<AuthRecord> {
        let auth = self.verify_token(token, kind, key).await?.ok_or_else(invalid_token)?;
        if auth.collection.id != coll.id {
            return Err(field_error(
                "token",
                ErrorCode::TokenCollectionMismatch,
                "The token collection doesn't match.",
            ));
        }
        Ok(auth)
    }

    /// `POST /api/collections/{c}/request-password-reset {email}`: 204 whatever the address.
    pub async fn request_password_reset(&self, coll: &str, req: EmailRequest) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        check_email("email", &req.email)?;
        if !coll.auth.as_ref().is_some_and(|a| a.password_auth_enabled) {
            return Err(ServiceError::bad(
                "The collection is not configured to allow password authentication.",
            ));
        }
        let Some(record) = self.store.find_by_field(&coll, "email", &req.email).await? else {
            return Ok(());
        };
        if !self.resend_allowed(&coll, &record, Flow::PasswordReset) {
            return Ok(());
        }
        let email = record_email(&record).to_string();
        let token = self.flow_token(&coll, &record, Flow::PasswordReset, &[("email", &email)])?;
        self.send_flow_mail(&coll, &record, Flow::PasswordReset, &token, &email).await
    }

    /// `POST /api/collections/{c}/confirm-password-reset {token, password, passwordConfirm}`:
    /// the new password (which rotates `tokenKey`: this and every other token of the record
    /// stop working); an unverified record whose address the token went to becomes verified.
    pub async fn confirm_password_reset(
        &self,
        coll: &str,
        req: PasswordResetConfirm,
    ) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        let mut data = Map::new();
        for (field, value) in [
            ("password", &req.password),
            ("passwordConfirm", &req.password_confirm),
            ("token", &req.token),
        ] {
            if value.is_empty() {
                data.insert(field.into(), error_entry(ErrorCode::Required, "Cannot be blank."));
            }
        }
        if data.is_empty() && req.password != req.password_confirm {
            data.insert(
                "passwordConfirm".into(),
                error_entry(ErrorCode::ValuesMismatch, "Values don't match."),
            );
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(INVALID_DATA, data));
        }
        // The form's own length check (PocketBase's: the field's minimum up to 255).
        let min = match coll.field("password").map(|f| &f.kind) {
            Some(FieldKind::Password { min, .. }) if *min > 0 => *min,
            _ => 8,
        };
        let chars = req.password.chars().count() as i64;
        if chars < min || chars > 255 {
            let mut data = Map::new();
            data.insert(
                "password".into(),
                json!({"code": ErrorCode::LengthOutOfRange.as_str(),
                       "message": format!("The length must be between {min} and 255."),
                       "params": {"max": 255, "min": min}}),
            );
            return Err(ServiceError::fields(INVALID_DATA, data));
        }
        let auth = self.flow_record(&coll, &req.token, "passwordReset", reset_key).await?;
        if req.password.len() > MAX_PASSWORD_BYTES {
            let mut data = Map::new();
            data.insert("password".into(), error_entry(ErrorCode::InvalidValue, "Invalid value."));
            return Err(ServiceError::fields("Failed to set new password.", data));
        }
        let claims = unverified_claims(&req.token);
        let mut body = Map::from_iter([
            ("password".to_string(), json!(req.password)),
            ("passwordConfirm".to_string(), json!(req.password_confirm)),
        ]);
        if claims.get("email").and_then(Value::as_str) == Some(record_email(&auth.record)) {
            body.insert("verified".into(), json!(true));
        }
        self.flow_update(&coll, &auth.record, body).await?;
        self.forget_resend(&coll, &auth.record, Flow::PasswordReset);
        Ok(())
    }

    /// `POST /api/collections/{c}/request-email-change {newEmail}` by the record itself: a
    /// confirmation mail to the new address.
    pub async fn request_email_change(
        &self,
        coll: &str,
        req: EmailChangeRequest,
        info: &RequestInfo,
    ) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        let auth = same_collection_auth(&coll, info)?;
        check_email("newEmail", &req.new_email)?;
        if req.new_email.eq_ignore_ascii_case(record_email(&auth.record)) {
            return Err(field_error("newEmail", ErrorCode::NotInInvalid, "Must not be in list."));
        }
        if self.store.find_by_field(&coll, "email", &req.new_email).await?.is_some() {
            return Err(field_error(
                "newEmail",
                ErrorCode::InvalidNewEmail,
                "Invalid new email address.",
            ));
        }
        let email = record_email(&auth.record).to_string();
        let token = self.flow_token(
            &coll,
            &auth.record,
            Flow::EmailChange,
            &[("email", &email), ("newEmail", &req.new_email)],
        )?;
        self.send_flow_mail(&coll, &auth.record, Flow::EmailChange, &token, &req.new_email).await
    }

    /// `POST /api/collections/{c}/confirm-email-change {token, password}`: the new address, now
    /// verified; the email change rotates `tokenKey` (every earlier token stops working).
    pub async fn confirm_email_change(&self, coll: &str, req: EmailChangeConfirm) -> Result<()> {
        let coll = self.auth_collection(coll)?;
        let mut data = Map::new();
        for (field, value) in [("password", &req.password), ("token", &req.token)] {
            if value.is_empty() {
                data.insert(field.into(), error_entry(ErrorCode::Required, "Cannot be blank."));
            }
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(INVALID_DATA, data));
        }
        let bad_password =
            || error_entry(ErrorCode::InvalidPassword, "Missing or invalid auth record password.");
        let claims = unverified_claims(&req.token);
        let Some(new_email) = claims
            .get("newEmail")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(String::from)
        else {
            data.insert("password".into(), bad_password());
            data.insert(
                "token".into(),
                error_entry(
                    ErrorCode::InvalidTokenPayload,
                    "Invalid token payload - newEmail must be set.",
                ),
            );
            return Err(ServiceError::fields(INVALID_DATA, data));
        };
        let auth = match self.flow_record(&coll, &req.token, "emailChange", email_change_key).await
        {
            Ok(auth) => auth,
            Err(ServiceError::BadRequest { data: mut token_data, .. }) => {
                token_data.insert("password".into(), bad_password());
                return Err(ServiceError::fields(INVALID_DATA, token_data));
            }
            Err(e) => return Err(e),
        };
        let hash = auth.record.get("password").and_then(Value::as_str).unwrap_or_default();
        if !verify_password(req.password, hash.to_string()).await {
            data.insert("password".into(), bad_password());
            return Err(ServiceError::fields(INVALID_DATA, data));
        }
        if self.store.find_by_field(&coll, "email", &new_email).await?.is_some() {
            return Err(field_error(
                "token",
                ErrorCode::InvalidNewEmail,
                "The new email address is already in use.",
            ));
        }
        let body = Map::from_iter([
            ("email".to_string(), json!(new_email)),
            ("verified".to_string(), json!(true)),
        ]);
        self.flow_update(&coll, &auth.record, body).await
    }

    /// `POST /api/collections/{c}/impersonate/{id} {duration}` (superusers): a token for that
    /// record that cannot be refreshed, valid `duration` seconds (0: the collection's auth
    /// token duration).
    pub async fn impersonate(
        &self,
        coll: &str,
        id: &str,
        duration: i64,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        if info.auth.is_none() {
            return Err(ServiceError::Unauthorized(
                "The request requires valid record authorization token.".into(),
            ));
        }
        if !info.is_superuser() {
            return Err(ServiceError::Forbidden(
                "The authorized record is not allowed to perform this action.".into(),
            ));
        }
        let coll = self.auth_collection(coll)?;
        if duration < 0 {
            return Err(field_error(
                "duration",
                ErrorCode::MinGreaterEqualThanRequired,
                "Must be no less than 0.",
            ));
        }
        let record =
            self.store.find_by_field(&coll, "id", id).await?.ok_or_else(ServiceError::not_found)?;
        let duration = if duration == 0 {
            coll.auth.as_ref().map_or(TokenKind::Auth.default_duration(), |a| {
                a.tokens.get(TokenKind::Auth).duration
            })
        } else {
            duration
        };
        let token = self.issue_token_for(&coll, &record, duration, false)?;
        let schema = self.schema();
        let record_params = ViewParams { expand: p.expand.clone(), fields: p.fields.clone() };
        let record = self.present_one(&schema, &coll, record, &record_params, info).await?;
        Ok(json!({"token": token, "record": record}))
    }
}

/// The collection's `otp` options: (enabled, code length, seconds a code lives).
fn otp_options(coll: &Collection) -> (bool, usize, i64) {
    let otp = coll.auth.as_ref().and_then(|a| a.extra.get("otp"));
    let get = |k: &str| otp.and_then(|o| o.get(k));
    let enabled = get("enabled").and_then(Value::as_bool).unwrap_or(false);
    let length = get("length").and_then(Value::as_u64).unwrap_or(8).clamp(4, 32) as usize;
    let duration = get("duration").and_then(Value::as_i64).unwrap_or(180).max(1);
    (enabled, length, duration)
}

fn otp_disabled() -> ServiceError {
    ServiceError::Forbidden("The collection is not configured to allow OTP authentication.".into())
}

fn invalid_otp() -> ServiceError {
    ServiceError::bad("Invalid or expired OTP.")
}

/// A code of `len` random digits.
fn otp_code(len: usize) -> String {
    crate::util::random_from(b"0123456789", len)
}

impl Service {
    /// `POST /api/collections/{c}/request-otp {email}`: `{"otpId"}` always (an unknown
    /// address gets an id that matches nothing); for a known one a code by mail, stored hashed
    /// in `_otps`.
    pub async fn request_otp(&self, coll: &str, req: EmailRequest) -> Result<Value> {
        let coll = self.auth_collection(coll)?;
        let (enabled, length, _) = otp_options(&coll);
        if !enabled {
            return Err(otp_disabled());
        }
        check_email("email", &req.email)?;
        let Some(record) = self.store.find_by_field(&coll, "email", &req.email).await? else {
            return Ok(
                json!({"otpId": crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15)}),
            );
        };
        let code = otp_code(length);
        let email = record_email(&record).to_string();
        let info = self.system_info()?;
        let row = Map::from_iter([
            ("collectionRef".to_string(), json!(coll.id)),
            ("recordRef".to_string(), json!(record_id(&record))),
            ("password".to_string(), json!(code)),
            ("sentTo".to_string(), json!(email)),
        ]);
        let otp = self.create_record(OTPS, row, &ViewParams::default(), &info).await?;
        let otp_id = otp.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let template = coll
            .auth
            .as_ref()
            .and_then(|a| a.extra.get("otp"))
            .and_then(|o| o.get("emailTemplate"));
        let vars = [("{OTP}", code.as_str()), ("{OTP_ID}", otp_id.as_str())];
        self.send_template(&coll, &record, template, templates::OTP, &vars, &email).await?;
        Ok(json!({"otpId": otp_id}))
    }

    /// `POST /api/collections/{c}/auth-with-otp {otpId, password}`: the code of a live `_otps`
    /// row of this collection logs its record in, once (the row is deleted), then MFA where it
    /// applies. A record whose address received the code becomes verified; if it was not
    /// verified before and MFA is off, its password is replaced by a random one (someone who
    /// registered the address first cannot keep a way in).
    pub async fn auth_with_otp(
        &self,
        coll: &str,
        req: OtpLogin,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let coll = self.auth_collection(coll)?;
        let (enabled, _, duration) = otp_options(&coll);
        if !enabled {
            return Err(otp_disabled());
        }
        let mut data = Map::new();
        for (field, value) in [("otpId", &req.otp_id), ("password", &req.password)] {
            if value.is_empty() {
                data.insert(field.into(), error_entry(ErrorCode::Required, "Cannot be blank."));
            }
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(INVALID_DATA, data));
        }
        let (_, otps) = self.collection(OTPS)?;
        let Some(otp) = self.store.find_by_field(&otps, "id", &req.otp_id).await? else {
            return Err(invalid_otp());
        };
        let text = |k: &str| otp.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        if text("collectionRef") != coll.id {
            return Err(invalid_otp());
        }
        let record_ref = text("recordRef");
        let attempts = self
            .otp_attempts
            .get_with(record_ref.clone(), || Arc::new(std::sync::atomic::AtomicU32::new(0)));
        if attempts.fetch_add(1, std::sync::atomic::Ordering::AcqRel) >= OTP_ATTEMPTS {
            return Err(ServiceError::TooManyRequests(
                "Too many attempts, please try again later with a new OTP.".into(),
            ));
        }
        let age = crate::util::parse_datetime(&text("created"))
            .map(|t| (chrono::Utc::now() - t).num_seconds());
        let expired = age.is_none_or(|age| age > duration);
        if expired || !verify_password(req.password, text("password")).await {
            return Err(invalid_otp());
        }
        let Some(record) = self.store.find_by_field(&coll, "id", &record_ref).await? else {
            return Err(invalid_otp());
        };
        let system = self.system_info()?;
        // Once: the code is gone before the token is handed out.
        self.delete_record(OTPS, &text("id"), &system).await?;
        let mut record = record;
        let unverified = record.get("verified") != Some(&Value::Bool(true));
        if unverified && text("sentTo") == record_email(&record) {
            let mut body = Map::from_iter([("verified".to_string(), json!(true))]);
            // Without MFA the code alone is the login: a password set before the address was
            // proven goes (with MFA it is the other factor, as PocketBase keeps it).
            let mfa_on = coll
                .auth
                .as_ref()
                .and_then(|a| a.extra.get("mfa"))
                .and_then(|m| m.get("enabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !mfa_on {
                let secret = crate::util::random_alnum(40);
                body.insert("password".into(), json!(secret));
                body.insert("passwordConfirm".into(), json!(secret));
            }
            self.flow_update(&coll, &record, body).await?;
            record = self
                .store
                .find_by_field(&coll, "id", &record_ref)
                .await?
                .ok_or_else(invalid_otp)?;
        }
        self.otp_attempts.invalidate(&record_ref);
        let auth = AuthRecord { collection: coll, record };
        self.login_with_factor(auth, "otp", req.mfa_id.as_ref(), p, info).await
    }
}

/// The system collection of one-time codes.
const OTPS: &str = "_otps";

/// The system collection of MFA sessions (first factors passed).
const MFAS: &str = "_mfas";

/// The system collection of devices auth records signed in from.
const ORIGINS: &str = "_authOrigins";

/// The devices remembered per auth record (the oldest is forgotten first).
const MAX_ORIGINS: usize = 5;

impl Service {
    /// The devices remembered for a record, the most recent first.
    async fn origins_of(&self, collection_id: &str, record_id: &str) -> Result<Vec<Value>> {
        let system = self.system_info()?;
        // Ids are [a-z0-9_] (collection ids `pbc_…`): safe inside the quoted filter values.
        let params = crate::service::params::ListParams {
            filter: Some(format!(
                "collectionRef = '{}' && recordRef = '{}'",
                collection_id.replace('\'', ""),
                record_id.replace('\'', "")
            )),
            sort: Some("-updated".into()),
            per_page: Some("100".into()),
            skip_total: Some("1".into()),
            ..Default::default()
        };
        let list = self.list_records(ORIGINS, &params, &system).await?;
        Ok(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// Forgets a record's devices (its password changed: every device must sign in anew, as
    /// PocketBase does). Failing to is logged, never an error of the password change.
    pub(crate) async fn forget_origins(&self, collection_id: &str, record_id: &str) {
        let forget = async {
            let system = self.system_info()?;
            for o in self.origins_of(collection_id, record_id).await? {
                let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
                self.delete_record(ORIGINS, id, &system).await?;
            }
            Ok::<(), ServiceError>(())
        };
        if let Err(e) = forget.await {
            tracing::warn!(error = %e, "auth: forgetting a record's devices failed");
        }
    }

    /// Remembers the device of a login (`_authOrigins`: a fingerprint of the address and the
    /// `User-Agent`) and, when the record has signed in before but never from this device and
    /// `authAlert.enabled`, mails it an alert. The first login ever is no news: no mail.
    pub(crate) async fn remember_origin(
        &self,
        auth: &AuthRecord,
        info: &RequestInfo,
    ) -> Result<()> {
        use sha2::Digest;
        let agent = info.headers.get("user_agent").and_then(Value::as_str).unwrap_or_default();
        let fingerprint = hex::encode(sha2::Sha256::digest(format!("{}{agent}", info.ip)));
        let system = self.system_info()?;
        let known = self.origins_of(&auth.collection.id, auth.id()).await?;
        let id_of = |o: &Value| o.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(same) = known
            .iter()
            .find(|o| o.get("fingerprint").and_then(Value::as_str) == Some(&fingerprint))
        {
            // Seen again: it becomes the most recent.
            let touch = Map::from_iter([("fingerprint".to_string(), json!(fingerprint))]);
            self.update_record(ORIGINS, &id_of(same), touch, &ViewParams::default(), &system)
                .await?;
            return Ok(());
        }
        let row = Map::from_iter([
            ("collectionRef".to_string(), json!(auth.collection.id)),
            ("recordRef".to_string(), json!(auth.id())),
            ("fingerprint".to_string(), json!(fingerprint)),
        ]);
        self.create_record(ORIGINS, row, &ViewParams::default(), &system).await?;
        for old in known.iter().skip(MAX_ORIGINS - 1) {
            self.delete_record(ORIGINS, &id_of(old), &system).await?;
        }
        let alert = auth.collection.auth.as_ref().and_then(|a| a.extra.get("authAlert"));
        let enabled =
            alert.and_then(|a| a.get("enabled")).and_then(Value::as_bool).unwrap_or(false);
        let email = record_email(&auth.record).to_string();
        if known.is_empty() || !enabled || email.is_empty() {
            return Ok(());
        }
        let mut agent_shown: String = agent.chars().take(200).collect();
        if agent.chars().count() > 200 {
            agent_shown.push_str("...");
        }
        let alert_info =
            escape_html(&format!("{} - {} {agent_shown}", crate::util::now_string(), info.ip));
        let template = alert.and_then(|a| a.get("emailTemplate"));
        let vars = [("{ALERT_INFO}", alert_info.as_str())];
        self.send_template(
            &auth.collection,
            &auth.record,
            template,
            templates::AUTH_ALERT,
            &vars,
            &email,
        )
        .await
    }
}

impl Service {
    /// The end of every login by a factor (`method`: `password`, `otp`): the collection's
    /// `authRule`, then MFA where it applies (`mfa.enabled`, and `mfa.rule` empty or matching
    /// the record): without `mfa_id` the factor opens an MFA session (`_mfas`) and the answer
    /// is `ServiceError::MfaRequired` (PocketBase's bare 401 `{"mfaId"}`); with it, a session of
    /// this record, not expired, passed by another method completes the login and is deleted.
    pub(crate) async fn login_with_factor(
        &self,
        auth: AuthRecord,
        method: &str,
        mfa_id: Option<&Value>,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        self.check_auth_rule(&auth, info).await?;
        if !self.mfa_applies(&auth, info).await? {
            return self.login_response(auth, p, info).await;
        }
        let mfa_id = match mfa_id {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(ServiceError::bad("Failed to read MFA Id.")),
        };
        let system = self.system_info()?;
        if mfa_id.is_empty() {
            let row = Map::from_iter([
                ("collectionRef".to_string(), json!(auth.collection.id)),
                ("recordRef".to_string(), json!(auth.id())),
                ("method".to_string(), json!(method)),
            ]);
            let session = self.create_record(MFAS, row, &ViewParams::default(), &system).await?;
            let id = session.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            return Err(ServiceError::MfaRequired(id));
        }
        let invalid = || ServiceError::bad("Invalid or expired MFA session.");
        let (_, mfas) = self.collection(MFAS)?;
        let session = self.store.find_by_field(&mfas, "id", mfa_id).await?.ok_or_else(invalid)?;
        let text = |k: &str| session.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        if text("collectionRef") != auth.collection.id || text("recordRef") != auth.id() {
            return Err(ServiceError::bad("Invalid MFA session."));
        }
        let duration = auth
            .collection
            .auth
            .as_ref()
            .and_then(|a| a.extra.get("mfa"))
            .and_then(|m| m.get("duration"))
            .and_then(Value::as_i64)
            .unwrap_or(600);
        let age = crate::util::parse_datetime(&text("created"))
            .map(|t| (chrono::Utc::now() - t).num_seconds());
        if age.is_none_or(|age| age > duration) {
            self.delete_record(MFAS, &text("id"), &system).await?;
            return Err(invalid());
        }
        if text("method") == method {
            return Err(ServiceError::bad("A different authentication method is required."));
        }
        self.delete_record(MFAS, &text("id"), &system).await?;
        self.login_response(auth, p, info).await
    }

    /// Whether the login of `auth` needs a second factor: `mfa.enabled`, and `mfa.rule` empty
    /// or matching the record (read with the login request's own `@request` values).
    async fn mfa_applies(&self, auth: &AuthRecord, info: &RequestInfo) -> Result<bool> {
        let mfa = auth.collection.auth.as_ref().and_then(|a| a.extra.get("mfa"));
        if !mfa.and_then(|m| m.get("enabled")).and_then(Value::as_bool).unwrap_or(false) {
            return Ok(false);
        }
        let rule = mfa.and_then(|m| m.get("rule")).and_then(Value::as_str).unwrap_or_default();
        if rule.trim().is_empty() {
            return Ok(true);
        }
        let Ok(expr) = crate::model::filter::parse(rule) else {
            // A rule that does not parse must not let anyone skip the second factor.
            return Err(ServiceError::bad("Failed to authenticate."));
        };
        let schema = self.schema();
        let found = self
            .store
            .get_record(&schema, &auth.collection, info, auth.id(), Some(&Arc::new(expr)))
            .await
            .map_err(|_| ServiceError::bad("Failed to authenticate."))?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_part_keeps_words_links_and_lines() {
        let html = "<p>Hi,</p>\n<p>Click\n  <a class=\"btn\" href=\"http://x/?a=1&amp;b=2\">here</a>\n</p>\n<p>A &lt;b&gt; &amp; co<br/>Bye</p>";
        assert_eq!(html_to_text(html), "Hi,\nClick here (http://x/?a=1&b=2)\nA <b> & co\nBye");
    }

    #[test]
    fn record_placeholders_escape_text_and_skip_hidden_fields() {
        let mut coll = Collection::blank(crate::model::collection::CollectionType::Auth, "users");
        coll.ensure_system_fields();
        let row: Row = serde_json::from_value(json!({
            "id": "abc", "email": "a<b>@x.io", "verified": true, "tokenKey": "secret"
        }))
        .unwrap_or_default();
        assert_eq!(
            fill_record(
                "{RECORD:id} {RECORD:email} {RECORD:verified} {RECORD:tokenKey} {RECORD:nope}",
                &coll,
                &row
            ),
            "abc a&lt;b&gt;@x.io true {RECORD:tokenKey} {RECORD:nope}"
        );
    }
}
