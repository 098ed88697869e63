//! Mail: the `email` job kind. A use case that sends mail enqueues an `email` job (in its unit
//! of work, so the mail exists exactly when the write commits); the runner delivers it with the
//! settings of the moment: SMTP (`lettre`) when `smtp.enabled`, else the local `sendmail -i -t`
//! as PocketBase does. A failed delivery is a failed attempt: retried with backoff, then dead.
//!
//! Payload (`POST /api/jobs {"kind": "email", "payload": …}` or `EmailJob`):
//! `{"to": ["a@x.io"] | "a@x.io", "cc": […], "bcc": […], "replyTo": "…", "subject": "…",
//!   "html": "…", "text": "…", "headers": {"X-Tag": "…"}}`; the sender is `meta.senderName
//! <meta.senderAddress>` from the settings.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::ErrorCode;
use crate::service::settings::Settings;
use crate::service::{error_entry, Service};

/// The job kind.
pub const EMAIL: &str = "email";
/// Recipients per message (to + cc + bcc).
pub const MAX_RECIPIENTS: usize = 100;
/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// One or several addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses::Many(Vec::new())
    }
}

impl Addresses {
    fn list(&self) -> Vec<&str> {
        match self {
            Addresses::One(s) => vec![s.as_str()],
            Addresses::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// An `email` job's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailJob {
    #[serde(default)]
    pub to: Addresses,
    #[serde(default)]
    pub cc: Addresses,
    #[serde(default)]
    pub bcc: Addresses,
    #[serde(default)]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub html: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub headers: Map<String, Value>,
}

fn mailbox(s: &str) -> Option<Mailbox> {
    s.parse::<Mailbox>().ok()
}

impl EmailJob {
    /// Checks a payload given over the API: `{field: error}` for each bad part (nested under
    /// `payload` by the caller).
    pub fn check(payload: &Value) -> Result<EmailJob, Map<String, Value>> {
        let mut bad = Map::new();
        let job: EmailJob = match serde_json::from_value(payload.clone()) {
            Ok(j) => j,
            Err(e) => {
                bad.insert(
                    "payload".into(),
                    error_entry(ErrorCode::InvalidValue, &format!("Not an email payload: {e}.")),
                );
                return Err(bad);
            }
        };
        let mut count = 0;
        for (key, list) in [("to", &job.to), ("cc", &job.cc), ("bcc", &job.bcc)] {
            let list = list.list();
            count += list.len();
            if list.iter().any(|a| mailbox(a).is_none()) {
                bad.insert(
                    key.into(),
                    error_entry(ErrorCode::IsEmail, "Must be valid email addresses."),
                );
            }
        }
        if job.to.list().is_empty() {
            bad.insert("to".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        }
        if count > MAX_RECIPIENTS {
            bad.insert(
                "to".into(),
                error_entry(
                    ErrorCode::TooManyValues,
                    &format!("At most {MAX_RECIPIENTS} recipients (to, cc and bcc)."),
                ),
            );
        }
        if job.reply_to.as_deref().is_some_and(|r| mailbox(r).is_none()) {
            bad.insert(
                "replyTo".into(),
                error_entry(ErrorCode::IsEmail, "Must be a valid email address."),
            );
        }
        if job.subject.trim().is_empty() {
            bad.insert("subject".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        }
        if job.html.is_empty() && job.text.is_empty() {
            bad.insert("html".into(), error_entry(ErrorCode::Required, "Give html, text or both."));
        }
        for (name, value) in &job.headers {
            let ok = HeaderName::new_from_ascii(name.clone()).is_ok()
                && name.len() <= 64
                && !is_reserved_header(name)
                && value.as_str().is_some_and(|v| !v.contains(['\r', '\n']));
            if !ok {
                bad.insert(
                    "headers".into(),
                    error_entry(
                        ErrorCode::InvalidValue,
                        &format!(
                            "Header {name:?}: a custom ASCII name with a one-line text value."
                        ),
                    ),
                );
            }
        }
        if bad.is_empty() {
            Ok(job)
        } else {
            Err(bad)
        }
    }

    /// The message, from the settings' sender.
    fn message(&self, s: &Settings) -> Result<Message, String> {
        let from = Mailbox::new(
            Some(s.meta.sender_name.clone()).filter(|n| !n.is_empty()),
            s.meta.sender_address.parse().map_err(|e| format!("the sender address: {e}"))?,
        );
        let mut b = Message::builder().from(from).subject(self.subject.clone());
        let parse = |a: &str| mailbox(a).ok_or_else(|| format!("bad address {a:?}"));
        for a in self.to.list() {
            b = b.to(parse(a)?);
        }
        for a in self.cc.list() {
            b = b.cc(parse(a)?);
        }
        for a in self.bcc.list() {
            b = b.bcc(parse(a)?);
        }
        if let Some(r) = &self.reply_to {
            b = b.reply_to(parse(r)?);
        }
        let mut msg = match (self.html.is_empty(), self.text.is_empty()) {
            (false, false) => {
                b.multipart(MultiPart::alternative_plain_html(self.text.clone(), self.html.clone()))
            }
            (false, true) => b.singlepart(SinglePart::html(self.html.clone())),
            _ => b.singlepart(SinglePart::plain(self.text.clone())),
        }
        .map_err(|e| format!("building the message: {e}"))?;
        for (name, value) in &self.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|e| format!("header {name:?}: {e}"))?;
            let value = value.as_str().unwrap_or_default().to_string();
            msg.headers_mut().insert_raw(HeaderValue::new(name, value));
        }
        Ok(msg)
    }
}

/// Headers the message builder owns (set from the payload's own fields).
fn is_reserved_header(name: &str) -> bool {
    const OWN: [&str; 10] = [
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "date",
    ];
    OWN.contains(&name.to_ascii_lowercase().as_str())
}

impl Service {
    /// Delivers an `email` job's payload (the runner's handler).
    pub async fn run_email(&self, payload: &Value) -> Result<(), String> {
        let job: EmailJob =
            serde_json::from_value(payload.clone()).map_err(|e| format!("bad payload: {e}"))?;
        let settings = self.settings().await.map_err(|e| format!("reading the settings: {e}"))?;
        let msg = job.message(&settings)?;
        if settings.smtp.enabled {
            send_smtp(&settings, msg).await
        } else {
            send_sendmail(&self.outbound.sendmail, msg, &job.bcc.list()).await
        }
    }
}

async fn send_smtp(s: &Settings, msg: Message) -> Result<(), String> {
    let t = &s.smtp;
    let params = TlsParameters::new(t.host.clone()).map_err(|e| format!("TLS: {e}"))?;
    // tls: implicit TLS from the first byte; otherwise STARTTLS when the server offers it.
    let tls = if t.tls { Tls::Wrapper(params) } else { Tls::Opportunistic(params) };
    let port = u16::try_from(t.port).map_err(|_| format!("bad SMTP port {}", t.port))?;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if !t.username.is_empty() {
        b = b.credentials(Credentials::new(t.username.clone(), t.password.clone()));
        match t.auth_method.as_str() {
            "PLAIN" => b = b.authentication(vec![Mechanism::Plain]),
            "LOGIN" => b = b.authentication(vec![Mechanism::Login]),
            _ => {}
        }
    }
    if !t.local_name.is_empty() {
        b = b.hello_name(ClientId::Domain(t.local_name.clone()));
    }
    b.build().send(msg).await.map(drop).map_err(|e| format!("SMTP {}:{}: {e}", t.host, port))
}

/// `sendmail -i -t`: recipients from the headers; Bcc ones on the command line (the message
/// text has no Bcc header).
async fn send_sendmail(command: &str, msg: Message, bcc: &[&str]) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(command)
        .arg("-i")
        .arg("-t")
        .args(bcc)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot run {command:?} ({e}); enable SMTP in the settings to send mail")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&msg.formatted()).await.map_err(|e| format!("writing to sendmail: {e}"))?;
    }
    let out = tokio::time::timeout(SMTP_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| "sendmail timed out".to_string())?
        .map_err(|e| format!("sendmail: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sendmail exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).chars().take(500).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_checks_name_the_field() {
        let bad = EmailJob::check(&json!({"to": ["nope"], "subject": ""})).unwrap_err();
        assert_eq!(bad["to"]["code"], "validation_is_email");
        assert_eq!(bad["subject"]["code"], "validation_required");
        assert_eq!(bad["html"]["code"], "validation_required");
        let bad = EmailJob::check(&json!({"to": "a@b.io", "subject": "s", "text": "t",
                                          "headers": {"Bcc": "x@y.io"}}))
        .unwrap_err();
        assert_eq!(bad["headers"]["code"], "validation_invalid_value");
        assert!(EmailJob::check(&json!({"to": "a@b.io", "subject": "s", "text": "t"})).is_ok());
        assert!(
            EmailJob::check(&json!({"to": "a@b.io", "subject": "s", "text": "t", "x": 1})).is_err()
        );
    }
}
