//! The unsubscribe page of notifications, for contacts who never sign in. Opening the link
//! changes nothing (mail scanners open links); the page's button, or a mail program's one-click
//! request (RFC 8058: a POST with `List-Unsubscribe=One-Click`), does it.
use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::graphql_endpoint::request_meta;
use super::{HttpState, RequestId};
use crate::domain::DomainError;
use crate::domain::contacts::{self, LinkTarget};

/// Nothing but the page itself: no script, no style from elsewhere, forms only to this origin.
const PAGE_CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\n<body><main><h1>{title}</h1>\n{body}</main></body></html>\n",
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

fn unknown_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "<p>The link does not name a subscription: it may have been mistyped, or the contact was removed.</p>\n",
    )
}

fn unavailable() -> Response {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>The service could not answer just now. Nothing was changed.</p>\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

/// `GET /unsubscribe?token=…`: says what the link would stop and offers the button.
pub(super) async fn show(State(state): State<HttpState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(token) = query.get("token") else {
        return unknown_link();
    };
    match contacts::inspect(&state.app, token).await {
        Ok(Some(target)) => {
            let what = if target.subscribed {
                format!(
                    "<p>Stop <strong>{category}</strong> mail from {org} to {email}?</p>\n",
                    category = escape(&target.category_name),
                    org = escape(&target.organization_name),
                    email = escape(&target.email),
                )
            } else {
                format!(
                    "<p>{email} no longer receives {category} mail from {org}.</p>\n",
                    category = escape(&target.category_name),
                    org = escape(&target.organization_name),
                    email = escape(&target.email),
                )
            };
            let form = format!(
                "<form method=\"post\" action=\"unsubscribe\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
                 <button type=\"submit\" name=\"scope\" value=\"category\">Unsubscribe from this category</button> \
                 <button type=\"submit\" name=\"scope\" value=\"all\">Unsubscribe from all of {org}'s mail</button></form>\n",
                token = escape(token.trim()),
                org = escape(&target.organization_name),
            );
            page(StatusCode::OK, "Unsubscribe", &format!("{what}{form}"))
        }
        Ok(None) => unknown_link(),
        Err(error) => {
            tracing::warn!(error = %error, "reading an unsubscribe link failed");
            unavailable()
        }
    }
}

fn done(target: &LinkTarget, everything: bool) -> Response {
    let what = if everything {
        format!(
            "<p>{email} will receive no more mail from {org}.</p>\n",
            email = escape(&target.email),
            org = escape(&target.organization_name),
        )
    } else {
        format!(
            "<p>{email} will receive no more {category} mail from {org}.</p>\n",
            email = escape(&target.email),
            category = escape(&target.category_name),
            org = escape(&target.organization_name),
        )
    };
    page(StatusCode::OK, "You are unsubscribed", &what)
}

/// `POST /unsubscribe`: the page's form (`token`, `scope=category|all`) or a mail program's
/// one-click request to the link itself (`?token=…` with `List-Unsubscribe=One-Click`).
pub(super) async fn confirm(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    // The page's form is url-encoded; a mail program's one-click POST may be url-encoded or
    // multipart (RFC 8058) and carries the token in the link itself, so the body is only
    // searched for the two plain fields the form sends.
    let form = form_fields(&body);
    let Some(token) = form.get("token").or_else(|| query.get("token")) else {
        return unknown_link();
    };
    let everything = form.get("scope").is_some_and(|s| s == "all");
    let meta = request_meta(&state, &headers, peer, &request_id);
    match contacts::unsubscribe(&state.app, &meta, token, everything).await {
        Ok(target) => done(&target, everything),
        Err(DomainError::NotFound(_)) => unknown_link(),
        Err(error) => {
            tracing::warn!(error = %error, "unsubscribing failed");
            unavailable()
        }
    }
}

/// `token` and `scope` of a url-encoded body. Their values are plain (URL-safe tokens, two
/// words), so nothing needs decoding; anything else in the body is ignored.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| matches!(*name, "token" | "scope"))
        .filter(|(_, value)| value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{escape, form_fields};

    #[test]
    fn only_the_plain_form_fields_are_read() {
        let fields = form_fields(b"token=ghu_abc-9_Z&scope=all&x=1");
        assert_eq!(fields.get("token").map(String::as_str), Some("ghu_abc-9_Z"));
        assert_eq!(fields.get("scope").map(String::as_str), Some("all"));
        assert!(form_fields(b"List-Unsubscribe=One-Click").is_empty());
        assert!(form_fields(b"token=%3Cscript%3E").is_empty());
    }

    #[test]
    fn names_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"co\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"
        );
    }
}
