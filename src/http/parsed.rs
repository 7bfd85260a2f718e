//! From what a client sent to requests the schema can run: the wire format (a JSON body, or
//! the query string of a GET), automatic persisted queries, and parsed documents remembered by
//! their text (clients send the same few documents again and again, and parsing is a large part
//! of a small request; validation still runs every time).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{ErrorExtensionValues, Pos, Request, ServerError, Variables};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Documents longer than this are parsed each time (they are rare and would crowd the rest).
const MAX_TEXT: usize = 16 * 1024;
/// Documents remembered before the whole set is forgotten and filled again.
const MAX_DOCUMENTS: usize = 512;
/// Bytes of persisted query text remembered per process; past it the oldest are forgotten
/// (their clients then send the text again, as the protocol expects of any server).
const MAX_PERSISTED_BYTES: usize = 16 * 1024 * 1024;
/// Longest document accepted for persisting.
const MAX_PERSISTED_TEXT: usize = 64 * 1024;

/// A request ready to run, with the document it runs (kept to shape its response).
#[derive(Debug)]
pub struct Prepared {
    pub request: Request,
    pub document: Arc<ExecutableDocument>,
}

/// One operation as a client sends it, in a JSON body or a GET query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRequest {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
    #[serde(default)]
    pub extensions: Option<serde_json::Value>,
}

/// A JSON body: one operation or a batch of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WireBody {
    Batch(Vec<WireRequest>),
    Single(WireRequest),
}

/// A request refused before it ran.
pub fn refusal(code: &str, message: impl Into<String>, location: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(message, location);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

fn bad_input(message: impl Into<String>) -> ServerError {
    refusal("BAD_USER_INPUT", message, None)
}

/// Persisted query texts, bounded by their total size.
#[derive(Default)]
pub struct Persisted {
    texts: async_graphql::indexmap::IndexMap<String, Arc<str>>,
    bytes: usize,
}

impl Persisted {
    fn keep(&mut self, hash: String, text: Arc<str>) {
        if self.texts.contains_key(&hash) {
            return;
        }
        self.bytes += text.len();
        self.texts.insert(hash, text);
        while self.bytes > MAX_PERSISTED_BYTES {
            let Some((_, oldest)) = self.texts.shift_remove_index(0) else {
                break;
            };
            self.bytes -= oldest.len();
        }
    }
}

#[derive(Clone, Default)]
pub struct ParsedDocuments {
    documents: Arc<Mutex<HashMap<String, Arc<ExecutableDocument>>>>,
    /// Document texts by the SHA-256 (hex) clients name them by, oldest first.
    persisted: Arc<Mutex<Persisted>>,
}

impl ParsedDocuments {
    /// The request the schema runs, with its document parsed, or why there is none.
    pub fn prepare(&self, wire: WireRequest) -> Result<Prepared, ServerError> {
        let variables = match wire.variables {
            None | Some(serde_json::Value::Null) => Variables::default(),
            Some(value @ serde_json::Value::Object(_)) => Variables::from_json(value),
            Some(_) => return Err(bad_input("`variables` must be an object")),
        };
        let extensions = match wire.extensions {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(map)) => map,
            Some(_) => return Err(bad_input("`extensions` must be an object")),
        };
        let query = self.query_text(wire.query, &extensions)?;
        let document = self.parse(&query)?;
        let mut request = Request::new(query.as_ref()).variables(variables);
        if let Some(name) = wire.operation_name.filter(|n| !n.is_empty()) {
            request = request.operation_name(name);
        }
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Ok(Prepared { request, document })
    }

    /// The document's text: sent, or named by an automatic persisted query's hash.
    fn query_text(
        &self,
        query: Option<String>,
        extensions: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<str>, ServerError> {
        let Some(persisted) = extensions.get("persistedQuery") else {
            return match query {
                Some(query) if !query.trim().is_empty() => Ok(query.into()),
                _ => Err(bad_input(
                    "the request has no `query`: send the operation's text (or a persisted query's hash)",
                )),
            };
        };
        let version = persisted.get("version").and_then(serde_json::Value::as_i64);
        let hash = persisted
            .get("sha256Hash")
            .and_then(serde_json::Value::as_str)
            .map(str::to_ascii_lowercase);
        let (Some(1), Some(hash)) = (version, hash) else {
            return Err(refusal(
                "PERSISTED_QUERY_NOT_SUPPORTED",
                "persisted queries are version 1 with a `sha256Hash`",
                None,
            ));
        };
        match query {
            None => {
                let known = self
                    .persisted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .texts
                    .get(&hash)
                    .cloned();
                known.ok_or_else(|| refusal("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound", None))
            }
            Some(query) => {
                if hex::encode(Sha256::digest(query.as_bytes())) != hash {
                    return Err(bad_input(
                        "the persisted query's `sha256Hash` is not the hash of `query`",
                    ));
                }
                let text: Arc<str> = query.into();
                if text.len() <= MAX_PERSISTED_TEXT {
                    self.persisted
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .keep(hash, text.clone());
                }
                Ok(text)
            }
        }
    }

    /// The parsed document, from memory or parsed now; a syntax error is one line with where.
    fn parse(&self, query: &str) -> Result<Arc<ExecutableDocument>, ServerError> {
        let known = (query.len() <= MAX_TEXT)
            .then(|| {
                self.documents
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(query)
                    .cloned()
            })
            .flatten();
        if let Some(document) = known {
            return Ok(document);
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).map_err(syntax_error)?);
        if query.len() <= MAX_TEXT {
            let mut documents = self.documents.lock().unwrap_or_else(PoisonError::into_inner);
            if documents.len() >= MAX_DOCUMENTS {
                documents.clear();
            }
            documents.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents.lock().map(|d| d.len()).unwrap_or_default()
    }
}

/// A parse failure as one line (the parser's own text is a multi-line diagram) with its place.
fn syntax_error(error: async_graphql::parser::Error) -> ServerError {
    let locations = error.positions().collect::<Vec<_>>();
    let message = match &error {
        async_graphql::parser::Error::Syntax { message, .. } => {
            let expected = message
                .lines()
                .map(str::trim)
                .find_map(|line| line.strip_prefix("= "))
                .unwrap_or("unexpected input");
            format!("syntax error: {expected}")
        }
        other => other.to_string().replace('\n', " "),
    };
    let mut refused = bad_input(message);
    refused.locations = locations;
    refused
}

/// Root fields of the operation a request runs, through fragments (a subscription must have
/// exactly one); 0 when the document names no single operation.
pub fn root_field_count(request: &mut Request) -> usize {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return 0;
    };
    crate::graphql::selected_operation(document, name.as_deref()).map_or(0, |operation| {
        crate::graphql::cost::root_field_count(document, &operation.selection_set.node)
    })
}

/// The type of the operation a request runs, when the document names exactly one to run.
pub fn operation_type(request: &mut Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    crate::graphql::selected_operation(document, name.as_deref()).map(|operation| operation.ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(query: &str) -> WireRequest {
        WireRequest {
            query: Some(query.to_owned()),
            ..WireRequest::default()
        }
    }

    fn code(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code").cloned())
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn documents_are_parsed_once_and_syntax_errors_are_one_line() {
        let parsed = ParsedDocuments::default();
        assert!(parsed.prepare(wire("{ a }")).is_ok());
        assert!(parsed.prepare(wire("{ a }")).is_ok());
        assert_eq!(parsed.len(), 1);
        let error = parsed.prepare(wire("{ a ")).expect_err("a syntax error");
        assert_eq!(parsed.len(), 1, "a syntax error is not remembered");
        assert!(!error.message.contains('\n'), "{}", error.message);
        assert!(error.message.starts_with("syntax error: expected"), "{}", error.message);
        assert_eq!(error.locations, vec![Pos { line: 1, column: 5 }]);
        assert_eq!(code(&error), "\"BAD_USER_INPUT\"");
    }

    #[test]
    fn a_request_without_a_query_is_refused_plainly() {
        let parsed = ParsedDocuments::default();
        let error = parsed.prepare(WireRequest::default()).expect_err("no query");
        assert!(error.message.contains("no `query`"), "{}", error.message);
        let error = parsed
            .prepare(WireRequest {
                query: Some("{ a }".to_owned()),
                variables: Some(serde_json::json!([1])),
                ..WireRequest::default()
            })
            .expect_err("variables must be an object");
        assert_eq!(code(&error), "\"BAD_USER_INPUT\"");
    }

    #[test]
    fn persisted_queries_are_asked_for_then_remembered_by_their_hash() {
        let parsed = ParsedDocuments::default();
        let text = "{ viewer { id } }";
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        let apq = |query: Option<&str>, hash: &str| WireRequest {
            query: query.map(str::to_owned),
            extensions: Some(serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })),
            ..WireRequest::default()
        };
        let unknown = parsed.prepare(apq(None, &hash)).expect_err("not yet known");
        assert_eq!(code(&unknown), "\"PERSISTED_QUERY_NOT_FOUND\"");
        assert_eq!(unknown.message, "PersistedQueryNotFound");
        let wrong = parsed.prepare(apq(Some("{ a }"), &hash)).expect_err("hash mismatch");
        assert_eq!(code(&wrong), "\"BAD_USER_INPUT\"");
        assert!(parsed.prepare(apq(Some(text), &hash)).is_ok());
        let known = parsed.prepare(apq(None, &hash)).expect("known by its hash");
        assert_eq!(known.request.query, text);
    }

    #[test]
    fn persisted_texts_are_bounded_by_their_size_oldest_first() {
        let mut persisted = Persisted::default();
        let text: Arc<str> = "x".repeat(MAX_PERSISTED_TEXT).into();
        let count = MAX_PERSISTED_BYTES / MAX_PERSISTED_TEXT + 10;
        for i in 0..count {
            persisted.keep(format!("{i}"), text.clone());
        }
        assert!(persisted.bytes <= MAX_PERSISTED_BYTES);
        assert!(!persisted.texts.contains_key("0"), "the oldest went first");
        assert!(persisted.texts.contains_key(&format!("{}", count - 1)));
    }

    #[test]
    fn memory_is_bounded() {
        let parsed = ParsedDocuments::default();
        for i in 0..MAX_DOCUMENTS + 5 {
            parsed.prepare(wire(&format!("{{ a{i} }}"))).expect("parses");
        }
        assert!(parsed.len() <= MAX_DOCUMENTS);
    }
}
