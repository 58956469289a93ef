//! The dashboard: one HTML page with its script and style sheet, embedded
//! in the binary with `include_str!` (nothing is fetched from elsewhere).
//! `GET /` serves the page, `GET /assets/{file}` its files. The page polls
//! the job API with relative URLs, so it also works mounted under a prefix
//! (open it with a trailing slash: `/weir/`).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::error_json;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The embedded files: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", INDEX_HTML),
    ("app.js", "text/javascript; charset=utf-8", APP_JS),
    ("style.css", "text/css; charset=utf-8", STYLE_CSS),
];

fn file(name: &str) -> HttpResponse {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
        None => HttpResponse::NotFound().json(error_json(format!("no dashboard file {name:?}"))),
    }
}

/// `GET /`.
pub(crate) async fn index() -> HttpResponse {
    file("index.html")
}

/// `GET /assets/{file}`.
pub(crate) async fn asset(name: web::Path<String>) -> HttpResponse {
    file(&name)
}
