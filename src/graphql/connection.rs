//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo`, and a `totalCount` that is
//! only counted when asked for.
use std::sync::Arc;

use async_graphql::SimpleObject;
use futures_util::future::BoxFuture;

use crate::domain::DomainResult;
use crate::domain::page::{Page, PageRequest, encode_cursor};

/// Where a page sits in its list.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether more items follow this page; pass `endCursor` as `after` to get them.
    pub has_next_page: bool,
    /// Whether this page was asked for with `after`, so items come before it.
    pub has_previous_page: bool,
    /// The cursor of the first edge of this page; `null` when the page is empty.
    pub start_cursor: Option<String>,
    /// The cursor of the last edge of this page, to pass as `after` for the next page; `null`
    /// when the page is empty.
    pub end_cursor: Option<String>,
}

/// Counts the whole list on demand.
pub type Counter = Arc<dyn Fn() -> BoxFuture<'static, DomainResult<u64>> + Send + Sync>;

/// Builds edges and page info from a domain page.
pub fn parts<T, N>(page: Page<T>, request: &PageRequest, node: impl Fn(T) -> N) -> (Vec<(String, N)>, PageInfo) {
    let edges: Vec<(String, N)> = page
        .items
        .into_iter()
        .map(|(id, item)| (encode_cursor(id), node(item)))
        .collect();
    let info = PageInfo {
        has_next_page: page.has_next_page,
        has_previous_page: request.after.is_some(),
        start_cursor: edges.first().map(|(c, _)| c.clone()),
        end_cursor: edges.last().map(|(c, _)| c.clone()),
    };
    (edges, info)
}

macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $doc:literal) => {
        #[doc = $doc]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub counter: $crate::graphql::connection::Counter,
        }

        impl $connection {
            pub fn new(
                parts: (Vec<(String, $node)>, $crate::graphql::connection::PageInfo),
                counter: $crate::graphql::connection::Counter,
            ) -> Self {
                let (edges, page_info) = parts;
                $connection {
                    edges: edges
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info,
                    counter,
                }
            }
        }

        #[doc = $doc]
        #[async_graphql::Object]
        impl $connection {
            /// The items of this page, each with its cursor, in list order.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The nodes of `edges`, for clients that need no cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }

            /// Where this page sits in the list, and the cursor to continue from.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }

            /// Size of the whole list, not of this page.
            async fn total_count(&self) -> $crate::graphql::error::ApiResult<i64> {
                Ok((self.counter)().await? as i64)
            }
        }

        #[doc = "An edge of a connection."]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// An opaque position in the list; pass it as `after` to get the items that follow.
            pub cursor: String,
            /// The item at this position.
            pub node: $node,
        }
    };
}
pub(crate) use connection;
