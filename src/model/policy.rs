//! Who may do what: API rules as stored (their text) and as enforced (parsed once, when the
//! collection definition is read), and every per-caller access decision built on them.
//!
//! Pure: the inputs are a collection, an action and the caller's `RequestInfo`; the outputs are
//! plain values. `service` asks before reading or writing records, `store::query` asks while it
//! compiles client filters and sorts, and realtime can ask per event without any HTTP around it.
//! Nothing here runs a rule: a `Decision::Filter` is an expression for the store to apply.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::collection::Collection;
use crate::model::field::Field;
use crate::model::filter::ast::{Expr, Ident};
use crate::model::filter::{self, ParseError};
use crate::model::request::RequestInfo;

/// One API rule: the text as the API speaks it (`null`, `""` or an expression) and its parsed
/// form. Built only by `Rule::new`, so the two can never disagree.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    raw: Option<String>,
    parsed: Parsed,
}

/// What a rule's text means.
#[derive(Debug, Clone, Default)]
pub enum Parsed {
    /// `null`: superusers only.
    #[default]
    Null,
    /// `""` (or only whitespace): anyone.
    Open,
    /// Allowed where the record matches the expression.
    Expr(Arc<Expr>),
    /// Text that does not parse (saved by another version, or written around the API). It is
    /// enforced like `Null`: a broken rule must never open a collection.
    Invalid(ParseError),
}

impl Rule {
    /// Parses `raw` once; every later decision reads the parsed form.
    pub fn new(raw: Option<String>) -> Rule {
        let parsed = match raw.as_deref() {
            None => Parsed::Null,
            Some(r) if r.trim().is_empty() => Parsed::Open,
            Some(r) => match filter::parse(r) {
                Ok(e) => Parsed::Expr(Arc::new(e)),
                Err(e) => Parsed::Invalid(e),
            },
        };
        Rule { raw, parsed }
    }

    /// `""`: anyone.
    pub fn open() -> Rule {
        Rule::new(Some(String::new()))
    }

    /// The text as stored and rendered.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    pub fn parsed(&self) -> &Parsed {
        &self.parsed
    }
}

/// Two rules are the same rule when their text is: the parsed form follows from it.
impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.raw == other.raw
    }
}

/// What a caller wants to do with a collection's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    View,
    Create,
    Update,
    Delete,
    /// Seeing a related record through `expand`: the target's view rule.
    Expand,
    /// Signing in to an auth collection: its `authRule`.
    Auth,
    /// Managing another auth record (changing its email or password without the old one): the
    /// `manageRule`.
    Manage,
}

/// The answer for one caller, collection and action.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No restriction: a superuser, or an open rule.
    All,
    /// Allowed for the records the expression matches.
    Filter(Arc<Expr>),
    /// Not allowed at all.
    Denied,
}

impl Decision {
    /// The expression to apply, if the decision restricts records.
    pub fn expr(&self) -> Option<&Expr> {
        match self {
            Decision::Filter(e) => Some(e),
            Decision::All | Decision::Denied => None,
        }
    }

    pub fn is_denied(&self) -> bool {
        matches!(self, Decision::Denied)
    }
}

/// The decisions for one caller. Cheap to build (a reference): one per request, or one per
/// subscriber and event.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    caller: &'a RequestInfo,
}

impl<'a> Policy<'a> {
    pub fn new(caller: &'a RequestInfo) -> Policy<'a> {
        Policy { caller }
    }

    fn superuser(&self) -> bool {
        self.caller.is_superuser()
    }

    /// May the caller do `action` on records of `coll`, and on which ones? Superusers pass every
    /// rule.
    pub fn decide(&self, coll: &Collection, action: Action) -> Decision {
        if self.superuser() {
            return Decision::All;
        }
        let auth = coll.auth.as_ref();
        let rule = match action {
            Action::List => &coll.rules.list,
            Action::View | Action::Expand => &coll.rules.view,
            Action::Create => &coll.rules.create,
            Action::Update => &coll.rules.update,
            Action::Delete => &coll.rules.delete,
            Action::Auth => match auth {
                Some(a) => &a.auth_rule,
                None => return Decision::Denied,
            },
            Action::Manage => {
                // As in PocketBase 0.40.6, managing needs a signed-in caller and a real
                // expression: an empty manageRule grants nothing (only superusers manage).
                let Some(a) = auth.filter(|_| self.caller.auth.is_some()) else {
                    return Decision::Denied;
                };
                return match a.manage_rule.parsed() {
                    Parsed::Expr(e) => Decision::Filter(e.clone()),
                    Parsed::Null | Parsed::Open | Parsed::Invalid(_) => Decision::Denied,
                };
            }
        };
        match rule.parsed() {
            Parsed::Open => Decision::All,
            Parsed::Expr(e) => Decision::Filter(e.clone()),
            Parsed::Null | Parsed::Invalid(_) => Decision::Denied,
        }
    }

    /// Which records of `target` a relation path in the caller's filter or sort may reach: the
    /// target's list rule. `None` when the path may not be used at all (a `null` list rule:
    /// only superusers filter or sort by that collection's fields); a rule that no longer
    /// parses lets the path reach no record.
    pub fn relation_path(&self, target: &Collection) -> Option<Decision> {
        if self.superuser() {
            return Some(Decision::All);
        }
        match target.rules.list.parsed() {
            Parsed::Null => None,
            Parsed::Open => Some(Decision::All),
            Parsed::Expr(e) => Some(Decision::Filter(e.clone())),
            Parsed::Invalid(_) => Some(Decision::Denied),
        }
    }

    /// Hidden fields are for superusers only: not rendered, filtered, sorted or expanded for
    /// anyone else (rules may still read them).
    pub fn sees_field(&self, field: &Field) -> bool {
        !field.hidden || self.superuser()
    }

    /// Whether the email of `record` (an auth record of `coll`) is shown: to superusers, to the
    /// record itself, and to anyone when its `emailVisibility` is on.
    pub fn sees_email(&self, coll: &Collection, record: &Map<String, Value>) -> bool {
        if self.superuser() {
            return true;
        }
        let visible = record.get("emailVisibility").and_then(Value::as_bool).unwrap_or(false);
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default();
        let owner =
            self.caller.auth.as_ref().is_some_and(|a| a.collection.id == coll.id && a.id() == id);
        visible || owner
    }

    /// Whether the caller's filters and sorts see `field` of `coll` only where the record's
    /// `emailVisibility` is on. Like PocketBase, this holds for the caller's own record too:
    /// filters match what any record shows to everyone.
    pub fn masks_email_in_filters(&self, coll: &Collection, field: &Field) -> bool {
        !self.superuser() && coll.is_auth() && field.name == "email"
    }

    /// Whether the caller may use `ident` in a client filter or sort. `@request.*` and
    /// `@collection.*` are for superusers, as in PocketBase: `@request.auth.*` reads the auth
    /// record's hidden fields (rules may, clients may not), and `@collection.*` reaches into
    /// collections the request is not about. A bare `@request` names nothing; the compiler
    /// refuses it as an unknown identifier.
    pub fn may_reference(&self, ident: &Ident) -> bool {
        let special =
            matches!(ident.segments.first().map(String::as_str), Some("@request" | "@collection"));
        self.superuser() || !special || ident.segments.len() < 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::{CollectionType, SUPERUSERS};
    use crate::model::request::AuthRecord;
    use serde_json::json;

    fn caller(coll: &Collection, id: &str) -> RequestInfo {
        let record = json!({"id": id}).as_object().unwrap().clone();
        let auth = AuthRecord { collection: Arc::new(coll.clone()), record };
        RequestInfo { auth: Some(auth), ..RequestInfo::default() }
    }

    fn with_rules(list: Option<&str>, view: Option<&str>) -> Collection {
        let mut c = Collection::blank(CollectionType::Base, "posts");
        c.rules.list = Rule::new(list.map(str::to_string));
        c.rules.view = Rule::new(view.map(str::to_string));
        c
    }

    #[test]
    fn rules_map_to_decisions_and_superusers_pass() {
        let c = with_rules(Some("  "), Some("owner = @request.auth.id"));
        let guest = RequestInfo::default();
        let p = Policy::new(&guest);
        assert_eq!(p.decide(&c, Action::List), Decision::All);
        assert!(p.decide(&c, Action::View).expr().is_some());
        assert!(p.decide(&c, Action::Expand).expr().is_some());
        assert!(p.decide(&c, Action::Create).is_denied(), "null");
        assert!(p.decide(&c, Action::Auth).is_denied(), "not an auth collection");
        let su = caller(&Collection::blank(CollectionType::Auth, SUPERUSERS), "s");
        for a in [Action::Create, Action::View, Action::Auth, Action::Manage] {
            assert_eq!(Policy::new(&su).decide(&c, a), Decision::All);
        }
    }

    #[test]
    fn broken_rules_deny_and_keep_their_text() {
        let c = with_rules(Some("title = "), Some("// only a comment"));
        let guest = RequestInfo::default();
        assert!(Policy::new(&guest).decide(&c, Action::List).is_denied());
        assert!(Policy::new(&guest).decide(&c, Action::View).is_denied());
        assert_eq!(c.rules.list.raw(), Some("title = "));
        assert!(matches!(c.rules.list.parsed(), Parsed::Invalid(_)));
        assert_eq!(Policy::new(&guest).relation_path(&c), Some(Decision::Denied));
        assert_eq!(Policy::new(&guest).relation_path(&with_rules(None, None)), None);
    }

    #[test]
    fn manage_needs_a_caller_and_an_expression() {
        let mut users = Collection::blank(CollectionType::Auth, "users");
        let set = |u: &mut Collection, r: Option<&str>| {
            if let Some(a) = u.auth.as_mut() {
                a.manage_rule = Rule::new(r.map(str::to_string));
            }
        };
        let member = caller(&users, "u1");
        set(&mut users, Some(""));
        assert!(Policy::new(&member).decide(&users, Action::Manage).is_denied(), "empty");
        set(&mut users, Some("@request.auth.id != ''"));
        assert!(Policy::new(&member).decide(&users, Action::Manage).expr().is_some());
        let guest = RequestInfo::default();
        assert!(Policy::new(&guest).decide(&users, Action::Manage).is_denied());
        let auth_rule = users.auth.as_ref().map(|a| a.auth_rule.raw());
        assert_eq!(auth_rule, Some(Some("")), "a blank auth collection's authRule is open");
        assert_eq!(Policy::new(&guest).decide(&users, Action::Auth), Decision::All);
    }

    #[test]
    fn hidden_fields_and_emails_by_caller() {
        let users = Collection::blank(CollectionType::Auth, "users");
        let guest = RequestInfo::default();
        let me = caller(&users, "u1");
        let password = users.field("password").unwrap().clone();
        let email = users.field("email").unwrap().clone();
        assert!(!Policy::new(&guest).sees_field(&password));
        assert!(Policy::new(&guest).sees_field(&email));
        let hidden = json!({"id": "u1", "emailVisibility": false}).as_object().unwrap().clone();
        assert!(!Policy::new(&guest).sees_email(&users, &hidden));
        assert!(Policy::new(&me).sees_email(&users, &hidden), "own record");
        assert!(Policy::new(&me).masks_email_in_filters(&users, &email), "even own record");
        let shown = json!({"id": "u2", "emailVisibility": true}).as_object().unwrap().clone();
        assert!(Policy::new(&guest).sees_email(&users, &shown));
    }

    #[test]
    fn request_and_collection_identifiers_are_for_superusers() {
        let guest = RequestInfo::default();
        let p = Policy::new(&guest);
        let refs = |f: &str| {
            let e = filter::parse(f).unwrap();
            e.idents().into_iter().all(|i| p.may_reference(i))
        };
        assert!(refs("title = \"a@request.b\" && x = '@collection.y.z'"), "text is text");
        assert!(!refs("@request.auth.id = ''"));
        assert!(!refs("x = 1 || strftime('%Y', @collection.posts.created) = '2024'"));
        // A bare `@request` names nothing; the compiler rejects it as a bad identifier (400).
        assert!(refs("@request = 1"));
    }
}
