//! The web console: the files `console/` builds, embedded in the binary by rust-embed (read
//! from disk in debug builds). `/assets/*` are content-hashed by Vite and cached as immutable;
//! any other path that is not an API route gets `index.html`, and the console's router shows
//! the page. A binary built with `HIPPO_SKIP_CONSOLE=1` answers with a page saying so.
use poem::http::{Method, StatusCode, header};
use poem::middleware::Compression;
use poem::{Endpoint, EndpointExt, Request, Response, handler};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$HIPPO_CONSOLE_DIR"]
#[allow_missing = true]
struct Dist;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` names the current hashed assets: always ask again.
const REVALIDATE: &str = "no-cache";

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Hippo</title>\
<p>This <code>hippo-api</code> was built without its web console (<code>HIPPO_SKIP_CONSOLE</code>). \
Build it with Node.js 20.19+ and npm installed to get the console; the API is at \
<a href=\"/docs\">/docs</a>.</p>";

/// The console's endpoint (gzip or brotli when the browser accepts them).
pub fn endpoint() -> impl Endpoint {
    serve.with(Compression::new())
}

#[handler]
fn serve(req: &Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .finish();
    }
    let path = req.uri().path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Dist::get(path)).flatten() {
        let cache = if path.starts_with("assets/") {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        return file_response(file, cache);
    }
    // A missing hashed file is a 404, never the page (the browser would parse HTML as a script).
    if path.starts_with("assets/") {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("not found");
    }
    match Dist::get("index.html") {
        Some(index) => file_response(index, REVALIDATE),
        None => Response::builder()
            .content_type("text/html; charset=utf-8")
            .header(header::CACHE_CONTROL, REVALIDATE)
            .body(NOT_BUILT),
    }
}

fn file_response(file: rust_embed::EmbeddedFile, cache: &str) -> Response {
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    Response::builder()
        .content_type(mime)
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(file.data.into_owned())
}

/// Whether the console's files are in this binary.
pub fn is_built() -> bool {
    Dist::get("index.html").is_some()
}
