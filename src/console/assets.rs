//! The console's static files, embedded in the binary (`include_str!`):
//! plain HTML, CSS and JavaScript with no build step and nothing fetched
//! from elsewhere, so the console works on a machine without internet.
//! Their total size is checked at compile time against
//! [`ASSETS_BYTES_MAX`].

use std::borrow::Cow;

use crate::ops::http::Response;

const INDEX_HTML: &str = include_str!("assets/index.html");
const STYLE_CSS: &str = include_str!("assets/style.css");
const APP_JS: &str = include_str!("assets/app.js");
const CHART_JS: &str = include_str!("assets/chart.js");
const FORMAT_JS: &str = include_str!("assets/format.js");

/// Bound on what the console adds to the binary, in bytes.
pub(super) const ASSETS_BYTES_MAX: usize = 1024 * 1024;
const _: () = assert!(
    INDEX_HTML.len() + STYLE_CSS.len() + APP_JS.len() + CHART_JS.len() + FORMAT_JS.len()
        < ASSETS_BYTES_MAX,
    "console assets over ASSETS_BYTES_MAX"
);

/// The asset at `path`, as a 200 answer, if there is one.
pub(super) fn lookup(path: &str) -> Option<Response> {
    let (content_type, body) = match path {
        "/ui" | "/ui/" | "/ui/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/ui/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "/ui/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/ui/chart.js" => ("text/javascript; charset=utf-8", CHART_JS),
        "/ui/format.js" => ("text/javascript; charset=utf-8", FORMAT_JS),
        _ => return None,
    };
    Some(Response {
        status: "200 OK",
        content_type,
        body: Cow::Borrowed(body.as_bytes()),
    })
}
