//! The seam between the HTTP layer and the application: the [`Handler`] a server calls for each
//! request. Its own file so that the connection loop (`conn.rs`) and the server (`server.rs`) both
//! depend on it rather than on each other.

use super::request::Request;
use super::response::Response;

/// Application code that turns a request into a response. Called on connection threads, concurrently.
///
/// A panic is caught, logged with the request id and answered with 500; the server keeps serving.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: &Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    fn handle(&self, request: &Request) -> Response {
        self(request)
    }
}
