//! Keyset pagination: opaque cursors over time-ordered ids, and the `first` bound.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::error::DomainError;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// A validated page request: how many rows, after which id.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Uuid>,
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<PageRequest, DomainError> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n < 0 => {
                return Err(DomainError::bad_input("first", "first must not be negative"));
            }
            Some(n) if n as u64 > MAX_PAGE_SIZE => {
                return Err(DomainError::bad_input(
                    "first",
                    format!("first may be at most {MAX_PAGE_SIZE}"),
                ));
            }
            Some(n) => n as u64,
        };
        let after = after.map(decode_cursor).transpose()?;
        Ok(PageRequest { first, after })
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid, DomainError> {
    let bad = || DomainError::bad_input("after", "the cursor is not valid");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("c1:").and_then(|id| id.parse().ok()).ok_or_else(bad)
}

/// One page of rows, in order, with whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(Uuid, T)>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `first + 1` fetched rows.
    pub fn from_rows(mut rows: Vec<(Uuid, T)>, first: u64) -> Page<T> {
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Page {
            items: rows,
            has_next_page,
        }
    }
}
