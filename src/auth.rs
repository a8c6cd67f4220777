//! The `AUTHORIZATION` header as IM reads it, the identities it carries, and the
//! salted hashes by which infralog recognises owners without storing passwords.
//!
//! IM's header is an "auth file" flattened to one line: credential lines separated by
//! the two characters `\n`, each a `;`-separated list of `key = value` pairs, or one
//! JSON list of objects (see `docs/api.md` §1.1). Values are secrets: nothing in
//! this module prints one, and [`CredentialLine`]'s `Debug` shows keys only.

use std::fmt;

use base64::Engine;

pub mod ownership;

/// What IM calls the line separator inside the header: backslash, `n`.
const LINE_SEPARATOR: &str = "\\n";
/// An escaped newline inside a value (PEM keys): backslash, backslash, `n`.
const ESCAPED_NEWLINE: &str = "\\\\n";

/// The credential type that carries an IM identity.
pub const IM_TYPE: &str = "InfrastructureManager";
/// Usernames with this prefix are reserved for OIDC identities.
pub const OPENID_USER_PREFIX: &str = "__OPENID__";
/// Types that describe neither an IM identity nor a cloud.
const NON_CLOUD_TYPES: [&str; 3] = [IM_TYPE, "VMRC", "EGIIS"];

/// Why an `AUTHORIZATION` header could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthHeaderError {
    /// The header is absent or empty.
    #[error("No authentication data provided")]
    Missing,
    /// A credential line has an `id` IM would reject. IM answers 500 here; it is the
    /// client's mistake, so the API answers 401.
    #[error("Incorrect value in auth item id: {0}")]
    InvalidItemId(String),
}

/// Why the credentials in a readable header do not identify an IM user.
///
/// The `Display` texts are IM's, because clients show them to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUser {
    /// No line has the type `InfrastructureManager`.
    #[error("No credentials provided for the InfrastructureManager.")]
    NoImCredentials,
    /// An `InfrastructureManager` line has neither a `username` nor a `token`.
    #[error("No username nor token for the InfrastructureManager.")]
    NoUsernameNorToken,
    /// The username starts with the prefix reserved for OIDC identities.
    #[error("Invalid username used for the InfrastructureManager.")]
    ReservedUsername,
    /// The token's `exp` claim is in the past.
    #[error("Invalid InfrastructureManager credentials. OIDC auth Token expired.")]
    TokenExpired,
    /// The token decodes and has not expired, but no OIDC issuer is configured, so
    /// none is accepted.
    #[error("Invalid InfrastructureManager credentials. Issuer not accepted.")]
    IssuerNotAccepted,
    /// IM raises this one as a generic error (400 on every route, even the list).
    #[error("Error trying to decode OIDC auth token: {0}")]
    UndecodableToken(String),
}

impl InvalidUser {
    /// IM raises undecodable tokens as a plain exception, which every route maps to
    /// 400, while the other variants are "invalid user" errors (401 on some routes).
    pub fn is_generic_error(&self) -> bool {
        matches!(self, InvalidUser::UndecodableToken(_))
    }
}

/// One line of the header: the key/value pairs in the order first seen. A later
/// duplicate key replaces the value in place, as a Python dict does.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialLine {
    pairs: Vec<(String, String)>,
}

impl CredentialLine {
    /// The value of `key`; `None` when the line does not have it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The line's `type`: `InfrastructureManager`, or a cloud type such as
    /// `OpenStack`; `None` when the line has none.
    pub fn kind(&self) -> Option<&str> {
        self.get("type")
    }

    /// The line's `id`, which names a cloud credential; `None` when absent.
    pub fn id(&self) -> Option<&str> {
        self.get("id")
    }

    /// Every `(key, value)` pair, in the order the keys were first seen.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn insert(&mut self, key: String, value: String) {
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((key, value)),
        }
    }
}

impl fmt::Debug for CredentialLine {
    // Values may be passwords, tokens or keys: show only which keys are present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("CredentialLine")
            .field("type", &self.kind())
            .field("keys", &keys)
            .finish()
    }
}

/// Reads an `AUTHORIZATION` header value into credential lines, exactly as IM 2.0.0
/// does when no Vault is configured (`Basic` and `Bearer` prefixes are not special).
pub fn parse_authorization(header: &str) -> Result<Vec<CredentialLine>, AuthHeaderError> {
    if header.is_empty() {
        return Err(AuthHeaderError::Missing);
    }
    let data = header.replace(ESCAPED_NEWLINE, "\n");
    let raw_lines: Vec<&str> = data.split(LINE_SEPARATOR).collect();
    let lines = match raw_lines.as_slice() {
        [single] => match parse_json_lines(single) {
            Some(lines) => lines,
            None => parse_text_lines(&raw_lines),
        },
        _ => parse_text_lines(&raw_lines),
    };
    for line in &lines {
        if let Some(id) = line.id() {
            if !id.is_empty() && !is_valid_item_id(id) {
                return Err(AuthHeaderError::InvalidItemId(id.to_string()));
            }
        }
    }
    Ok(lines)
}

/// The one-line JSON form: a list of objects. Anything else that is valid JSON makes
/// IM fail later with a server error; here it simply carries no credentials.
fn parse_json_lines(line: &str) -> Option<Vec<CredentialLine>> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let serde_json::Value::Array(items) = value else {
        return Some(Vec::new());
    };
    let lines = items
        .into_iter()
        .filter_map(|item| match item {
            serde_json::Value::Object(map) => {
                let mut line = CredentialLine::default();
                for (key, value) in map {
                    let text = match value {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => continue,
                        other => other.to_string(),
                    };
                    line.insert(key, text);
                }
                Some(line)
            }
            _ => None,
        })
        .collect();
    Some(lines)
}

fn parse_text_lines(lines: &[&str]) -> Vec<CredentialLine> {
    lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(parse_text_line)
        .collect()
}

fn parse_text_line(line: &str) -> CredentialLine {
    let mut credential = CredentialLine::default();
    for token in split_quoted(line, ';', true) {
        let key_value = split_quoted(&token, '=', false);
        // IM stops reading a line at its first token that is not exactly `k = v`.
        let [key, value] = key_value.as_slice() else {
            break;
        };
        credential.insert(
            key.trim().to_string(),
            value.trim().replace(LINE_SEPARATOR, "\n"),
        );
    }
    credential
}

/// Splits on `separator` outside single or double quotes. Quotes are kept in the
/// tokens when `keep_quotes` is set (the first pass), and dropped otherwise. A final
/// blank token is kept only if it had quotes, so `k=''` has an empty value and `k=`
/// has none.
fn split_quoted(line: &str, separator: char, keep_quotes: bool) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_single, mut in_double, mut had_quotes) = (false, false, false);
    for c in line.chars() {
        if c == '"' && !in_single {
            had_quotes = true;
            in_double = !in_double;
            if keep_quotes {
                token.push(c);
            }
        } else if c == '\'' && !in_double {
            had_quotes = true;
            in_single = !in_single;
            if keep_quotes {
                token.push(c);
            }
        } else if c == separator && !in_single && !in_double {
            tokens.push(std::mem::take(&mut token));
        } else {
            token.push(c);
        }
    }
    if !token.trim().is_empty() || had_quotes {
        tokens.push(token);
    }
    tokens
}

/// IM's rule for credential ids: `[a-zA-Z_.][\w\d_.-]*`, matched in full.
fn is_valid_item_id(id: &str) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == '.')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password, token or key so that it is never printed.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for hashing and for handing to a connector.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// One IM identity from the request: what ownership is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImCredential {
    /// The line's `username`: the name owners are matched by.
    pub username: String,
    /// IM accepts a username without a password; ownership then matches only owners
    /// that had no password either.
    pub password: Option<Secret>,
    /// Whether the line authenticated with a token (owners created by token users
    /// are only reachable by requests that carry a token too).
    pub has_token: bool,
}

/// A cloud credential line: which connector to use, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCredential {
    /// The line's `id`, or `<type><position>` when it has none (IM's rule).
    pub id: String,
    /// The line's `type`: the connector that serves it (`OpenStack`, `Dummy`...).
    pub kind: String,
    /// The whole line, for the connector to read its host and secrets from.
    pub line: CredentialLine,
}

/// The validated credentials of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The IM identities, in header order; at least one.
    pub im: Vec<ImCredential>,
    /// The cloud credentials, in header order; possibly none.
    pub clouds: Vec<CloudCredential>,
}

impl Identity {
    /// The username IM names in its logs and `/stats`: the first IM line's.
    pub fn primary_username(&self) -> &str {
        self.im.first().map(|c| c.username.as_str()).unwrap_or("")
    }

    /// The cloud credential with this id; `None` when the header has none.
    pub fn cloud(&self, id: &str) -> Option<&CloudCredential> {
        self.clouds.iter().find(|c| c.id == id)
    }
}

/// Validates the credential lines as IM's `check_auth_data` does with its default
/// configuration (no user database, no OIDC issuer configured: token lines are
/// refused, failing closed).
pub fn authenticate(lines: &[CredentialLine]) -> Result<Identity, InvalidUser> {
    let mut im = Vec::new();
    let mut clouds = Vec::new();
    for (position, line) in lines.iter().enumerate() {
        match line.kind() {
            Some(IM_TYPE) => im.push(line),
            Some(kind) if !NON_CLOUD_TYPES.contains(&kind) => {
                let id = match line.id() {
                    Some(id) if !id.is_empty() => id.to_string(),
                    _ => format!("{kind}{position}"),
                };
                clouds.push(CloudCredential {
                    id,
                    kind: kind.to_string(),
                    line: line.clone(),
                });
            }
            _ => {}
        }
    }
    if im.is_empty() {
        return Err(InvalidUser::NoImCredentials);
    }
    let im = im
        .into_iter()
        .map(check_im_line)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Identity { im, clouds })
}

fn check_im_line(line: &CredentialLine) -> Result<ImCredential, InvalidUser> {
    if let Some(token) = line.get("token") {
        check_token(token)?;
        // No issuer is configured, so check_token never accepts a token.
        return Err(InvalidUser::IssuerNotAccepted);
    }
    let Some(username) = line.get("username") else {
        return Err(InvalidUser::NoUsernameNorToken);
    };
    if username.starts_with(OPENID_USER_PREFIX) {
        return Err(InvalidUser::ReservedUsername);
    }
    Ok(ImCredential {
        username: username.to_string(),
        password: line.get("password").map(Secret::new),
        has_token: false,
    })
}

/// IM decodes the JWT (without checking its signature) and refuses expired ones
/// before it looks at the issuer.
fn check_token(token: &str) -> Result<(), InvalidUser> {
    let claims = decode_jwt_claims(token).map_err(InvalidUser::UndecodableToken)?;
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_f64) {
        if exp < chrono::Utc::now().timestamp() as f64 {
            return Err(InvalidUser::TokenExpired);
        }
    }
    if claims
        .get("iss")
        .and_then(serde_json::Value::as_str)
        .is_none()
    {
        return Err(InvalidUser::UndecodableToken("'iss'".to_string()));
    }
    Ok(())
}

fn decode_jwt_claims(token: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err("Not enough segments".to_string());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "Invalid payload padding".to_string())?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err("Invalid payload string".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(header: &str) -> Vec<CredentialLine> {
        parse_authorization(header).expect("header parses")
    }

    #[test]
    fn lines_are_separated_by_a_literal_backslash_n() {
        let parsed = lines(
            "id = im; type = InfrastructureManager; username = u; password = p\\nid = dummy; type = Dummy",
        );
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].get("username"), Some("u"));
        assert_eq!(parsed[0].get("password"), Some("p"));
        assert_eq!(parsed[1].kind(), Some("Dummy"));
        assert_eq!(parsed[1].id(), Some("dummy"));
    }

    #[test]
    fn quoted_values_may_hold_separators_and_lose_their_quotes() {
        let parsed = lines("type=InfrastructureManager;username='a;b';password=\"p;w=x\"");
        assert_eq!(parsed[0].get("username"), Some("a;b"));
        assert_eq!(parsed[0].get("password"), Some("p;w=x"));
    }

    #[test]
    fn a_line_stops_at_its_first_token_that_is_not_a_pair() {
        let parsed = lines("type = InfrastructureManager; garbage; username = u");
        assert_eq!(parsed[0].kind(), Some("InfrastructureManager"));
        assert_eq!(parsed[0].get("username"), None);
    }

    #[test]
    fn an_empty_quoted_value_is_kept_and_a_bare_key_is_not() {
        let parsed = lines("type = InfrastructureManager; username = u; password = ''");
        assert_eq!(parsed[0].get("password"), Some(""));
        let parsed = lines("type = InfrastructureManager; username = u; password =");
        assert_eq!(parsed[0].get("password"), None);
        assert_eq!(parsed[0].get("username"), Some("u"));
    }

    #[test]
    fn escaped_newlines_in_values_become_newlines() {
        let parsed = lines("id = k; type = OpenStack; key = 'a\\\\nb'");
        assert_eq!(parsed[0].get("key"), Some("a\nb"));
    }

    #[test]
    fn comment_and_blank_lines_are_skipped() {
        let parsed = lines("# comment\\n \\ntype = InfrastructureManager; username = u");
        assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn a_single_json_line_is_a_credential_list() {
        let parsed = lines(
            r#"[{"id": "im", "type": "InfrastructureManager", "username": "u", "password": "p"}, {"id": "dummy", "type": "Dummy"}]"#,
        );
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].get("username"), Some("u"));
        let identity = authenticate(&parsed).expect("valid identity");
        assert_eq!(identity.clouds[0].id, "dummy");
    }

    #[test]
    fn json_that_is_not_a_list_carries_no_credentials() {
        let parsed = lines(r#"{"type": "InfrastructureManager", "username": "u"}"#);
        assert_eq!(
            authenticate(&parsed),
            Err(InvalidUser::NoImCredentials),
            "a JSON object is not a credential list"
        );
    }

    #[test]
    fn an_empty_header_is_missing() {
        assert_eq!(parse_authorization(""), Err(AuthHeaderError::Missing));
    }

    #[test]
    fn item_ids_follow_ims_pattern() {
        assert_eq!(
            parse_authorization("id = i m; type = InfrastructureManager; username = a"),
            Err(AuthHeaderError::InvalidItemId("i m".into()))
        );
        assert!(parse_authorization("id = 1im; type = Dummy").is_err());
        assert!(parse_authorization("id = .x-y_z9; type = Dummy").is_ok());
        assert!(
            parse_authorization("id = ; type = Dummy").is_ok(),
            "an empty id is not checked"
        );
    }

    #[test]
    fn basic_and_bearer_headers_carry_no_im_identity() {
        for header in ["Basic dXNlcjpwYXNz", "Bearer abc.def.ghi", "garbage"] {
            assert_eq!(
                authenticate(&lines(header)),
                Err(InvalidUser::NoImCredentials),
                "{header}"
            );
        }
    }

    #[test]
    fn an_im_line_needs_a_username_or_a_token() {
        assert_eq!(
            authenticate(&lines("type = InfrastructureManager; password = x")),
            Err(InvalidUser::NoUsernameNorToken)
        );
    }

    #[test]
    fn a_username_without_password_is_an_identity() {
        let identity = authenticate(&lines("type = InfrastructureManager; username = u"))
            .expect("valid identity");
        assert_eq!(identity.im[0].username, "u");
        assert_eq!(identity.im[0].password, None);
    }

    #[test]
    fn openid_usernames_are_reserved() {
        assert_eq!(
            authenticate(&lines(
                "type = InfrastructureManager; username = __OPENID__x"
            )),
            Err(InvalidUser::ReservedUsername)
        );
    }

    #[test]
    fn tokens_are_refused_without_a_configured_issuer() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iss": "https://issuer", "sub": "s", "exp": 99999999999}"#);
        let header = format!("type = InfrastructureManager; token = h.{claims}.s");
        assert_eq!(
            authenticate(&lines(&header)),
            Err(InvalidUser::IssuerNotAccepted)
        );
        let expired = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iss": "https://issuer", "exp": 1}"#);
        let header = format!("type = InfrastructureManager; token = h.{expired}.s");
        assert_eq!(
            authenticate(&lines(&header)),
            Err(InvalidUser::TokenExpired)
        );
        let undecodable = authenticate(&lines("type = InfrastructureManager; token = nope"));
        assert!(matches!(undecodable, Err(InvalidUser::UndecodableToken(_))));
    }

    #[test]
    fn cloud_lines_without_id_are_named_by_type_and_position() {
        let identity = authenticate(&lines(
            "type = InfrastructureManager; username = u\\ntype = Dummy\\ntype = VMRC; host = h",
        ))
        .expect("valid identity");
        assert_eq!(identity.clouds.len(), 1);
        assert_eq!(identity.clouds[0].id, "Dummy1");
    }

    #[test]
    fn debug_output_never_shows_values() {
        let parsed = lines("type = InfrastructureManager; username = u; password = s3cr3t");
        let identity = authenticate(&parsed).expect("valid identity");
        let printed = format!("{parsed:?} {identity:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }
}
