//! Every route of the API in one list.

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::http::routes::{auth, collections, health, records};
use crate::http::{admin_ui, middleware, AppState};

pub fn router(state: AppState) -> Router {
    let [h1, h2, h3, h4] = middleware::security_headers();
    let api = Router::new()
        .route("/api/health", get(health::check).head(health::check))
        .route("/api/collections", get(collections::list).post(collections::create))
        .route("/api/collections/import", put(collections::import))
        .route("/api/collections/meta/scaffolds", get(collections::scaffolds))
        .route(
            "/api/collections/{c}",
            get(collections::view).patch(collections::update).delete(collections::delete),
        )
        .route("/api/collections/{c}/truncate", delete(collections::truncate))
        .route("/api/collections/{c}/records", get(records::list).post(records::create))
        .route(
            "/api/collections/{c}/records/{id}",
            get(records::view).patch(records::update).delete(records::delete),
        )
        .route("/api/collections/{c}/auth-methods", get(auth::methods))
        .route("/api/collections/{c}/auth-with-password", post(auth::with_password))
        .route("/api/collections/{c}/auth-refresh", post(auth::refresh))
        .route("/_/", get(admin_ui::index))
        .route("/_/{*path}", get(admin_ui::asset))
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .fallback(middleware::not_found);
    api.with_state(state)
        // The limit is enforced where bodies are read, so a 413 still gets the JSON envelope.
        .layer(DefaultBodyLimit::max(middleware::MAX_BODY_BYTES))
        .layer(middleware::cors())
        .layer(h1)
        .layer(h2)
        .layer(h3)
        .layer(h4)
}
