//! Validated input values: each constructor is the only way to obtain one.
use super::error::DomainError;

/// An email address with its canonical form (trimmed, lower-cased) used for uniqueness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    display: String,
    canonical: String,
}

impl Email {
    /// As the person typed it (trimmed).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The form compared for uniqueness.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    pub fn parse(field: &str, raw: &str) -> Result<Email, DomainError> {
        let display = raw.trim().to_owned();
        let bad = || DomainError::bad_input(field, "enter a valid email address such as ada@example.com");
        if display.len() > 254 || display.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = display.rsplit_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(bad());
        }
        Ok(Email {
            canonical: display.to_lowercase(),
            display,
        })
    }

    /// The canonical form of any string, for lookups that must not fail on malformed input.
    pub fn canonical_of(raw: &str) -> String {
        raw.trim().to_lowercase()
    }
}

/// A password meeting the length rules; never logged or displayed.
pub struct Password(String);

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 1024;

impl Password {
    /// The password itself, to hash.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn parse(field: &str, raw: &str) -> Result<Password, DomainError> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(DomainError::bad_input(
                field,
                format!("the password needs at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(DomainError::bad_input(
                field,
                format!("the password may have at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Password(raw.to_owned()))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A URL-safe identifier: `[a-z0-9-]{3,40}`, not starting or ending with a hyphen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn parse(field: &str, raw: &str) -> Result<Slug, DomainError> {
        let ok = (3..=40).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Slug(raw.to_owned()))
        } else {
            Err(DomainError::bad_input(
                field,
                "use 3 to 40 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
            ))
        }
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn display_name(field: &str, raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 || name.chars().any(char::is_control) {
        return Err(DomainError::bad_input(field, "use 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn email_is_canonicalised() {
        let email = Email::parse("email", "  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(email.canonical, "ada.lovelace@example.com");
        assert_eq!(email.display, "Ada.Lovelace@Example.COM");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa..mple.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse("email", raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn slugs_follow_the_pattern() {
        assert!(Slug::parse("slug", "acme-42").is_ok());
        for raw in ["ab", "Acme", "acme_x", "-acme", "acme-", &"a".repeat(41)] {
            assert!(Slug::parse("slug", raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(Password::parse("password", "123456789").is_err());
        assert!(Password::parse("password", "1234567890").is_ok());
    }

    proptest! {
        #[test]
        fn canonical_email_ignores_case(local in "[a-zA-Z0-9.]{1,20}", domain in "[a-zA-Z]{1,10}") {
            let lower = Email::parse("email", &format!("{local}@{domain}.com")).expect("valid");
            let upper = Email::parse("email", &format!("{}@{}.COM", local.to_uppercase(), domain.to_uppercase())).expect("valid");
            prop_assert_eq!(lower.canonical, upper.canonical);
        }
    }
}
