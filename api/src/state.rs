//! What every handler can reach: the worker's dependencies (database, events, keys, repository
//! cache, settings) and the queue's sending side.
use hippo_worker::context::Deps;
use hippo_worker::queue::Queue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct State {
    pub deps: Arc<Deps>,
    pub queue: Queue,
    /// Login limits, lockouts and the password hashing pool.
    pub login_guard: crate::login_guard::LoginGuard,
    /// When each repository was last fetched for the Git listing routes.
    fetched: Mutex<HashMap<String, Instant>>,
}

impl State {
    pub fn new(deps: Arc<Deps>, queue: Queue) -> Self {
        Self {
            login_guard: crate::login_guard::LoginGuard::new(&deps.settings),
            deps,
            queue,
            fetched: Mutex::new(HashMap::new()),
        }
    }
    /// True if `url` was fetched less than `max_age` ago; otherwise records "now" and says false.
    pub fn fresh(&self, url: &str, max_age: Duration) -> bool {
        let Ok(mut m) = self.fetched.lock() else {
            return false;
        };
        match m.get(url) {
            Some(t) if t.elapsed() < max_age => true,
            _ => {
                m.insert(url.to_owned(), Instant::now());
                false
            }
        }
    }
    pub fn forget_fetch(&self, url: &str) {
        if let Ok(mut m) = self.fetched.lock() {
            m.remove(url);
        }
    }
}

impl std::ops::Deref for State {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}
