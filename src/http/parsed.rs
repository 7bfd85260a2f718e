//! Parsed operations, remembered by their text. Clients send the same few documents again and
//! again, and parsing is a large part of a small request; validation still runs every time.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{BatchRequest, Request};

/// Documents longer than this are parsed each time (they are rare and would crowd the rest).
const MAX_TEXT: usize = 16 * 1024;
/// Documents remembered before the whole set is forgotten and filled again.
const MAX_DOCUMENTS: usize = 512;

#[derive(Clone, Default)]
pub struct ParsedDocuments {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ParsedDocuments {
    /// Gives each request of the batch its parsed document, from memory or parsed now. A
    /// document that does not parse is left for the schema, which reports the syntax error.
    pub fn prepare(&self, batch: BatchRequest) -> BatchRequest {
        match batch {
            BatchRequest::Single(request) => BatchRequest::Single(self.prepare_one(request)),
            BatchRequest::Batch(requests) => {
                BatchRequest::Batch(requests.into_iter().map(|r| self.prepare_one(r)).collect())
            }
        }
    }

    fn prepare_one(&self, mut request: Request) -> Request {
        if request.query.len() > MAX_TEXT {
            return request;
        }
        let known = self
            .documents
            .lock()
            .ok()
            .and_then(|documents| documents.get(&request.query).cloned());
        if let Some(document) = known {
            request.set_parsed_query(document);
            return request;
        }
        if let Ok(document) = request.parsed_query().cloned()
            && let Ok(mut documents) = self.documents.lock()
        {
            if documents.len() >= MAX_DOCUMENTS {
                documents.clear();
            }
            documents.insert(request.query.clone(), document);
        }
        request
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents.lock().map(|d| d.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_parsed_once_and_bad_ones_are_left_to_the_schema() {
        let parsed = ParsedDocuments::default();
        let BatchRequest::Single(mut first) = parsed.prepare(BatchRequest::Single(Request::new("{ a }"))) else {
            panic!("single")
        };
        assert!(first.parsed_query().is_ok());
        parsed.prepare(BatchRequest::Single(Request::new("{ a }")));
        assert_eq!(parsed.len(), 1);
        parsed.prepare(BatchRequest::Single(Request::new("{ a ")));
        assert_eq!(parsed.len(), 1, "a syntax error is not remembered");
    }

    #[test]
    fn memory_is_bounded() {
        let parsed = ParsedDocuments::default();
        for i in 0..MAX_DOCUMENTS + 5 {
            parsed.prepare(BatchRequest::Single(Request::new(format!("{{ a{i} }}"))));
        }
        assert!(parsed.len() <= MAX_DOCUMENTS);
    }
}
