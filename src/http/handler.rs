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

    /// Answers `request` at once from memory, or `None` when answering may wait on anything (the database,
    /// a lock held by slow work, another thread). The event loop that reads plain-HTTP connections calls
    /// this on its own thread, so every connection it watches waits while it runs; on `None` it hands the
    /// connection to a thread of its own, which calls [`Handler::handle`]. The answer must be the one
    /// `handle` would give. By default nothing is answered at once.
    fn handle_now(&self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    fn handle(&self, request: &Request) -> Response {
        self(request)
    }
}
