//! What every HTTP server of the station is built from (the dock's status server now, the
//! review desk next): axum routers served by [`serve::serve`] with bounded connections and
//! time, the [`host`] check against DNS rebinding, the [`token`] check, and the response
//! headers every answer carries.
//!
//! A server is a `Router` of its own handlers with these layers around it, outermost first:
//! [`security_headers`], [`host::check_host`], then [`token::require_token`] on the routes that
//! need it (see `status/http.rs`).

pub mod host;
pub mod serve;
pub mod token;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Headers on every answer: nothing is cached (the answers change and may be private), no
/// content is sniffed into another type, no `Referer` leaves, no other site frames the page
/// (clickjacking of the login form), and `csp` says what the page may load.
pub async fn security_headers(State(csp): State<&'static str>, mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    res
}
