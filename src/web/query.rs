//! Querying results over HTTP: [`LatestWindows`] keeps the latest window
//! result of every key of a windowed aggregation, shared between the job's
//! sink and the HTTP handlers.
//!
//! [`LatestWindows::sink`] is a [`Sink`] for `WindowResult<K, R>`: put it
//! at the end of `... .window(..).aggregate(..)`. For each key it keeps the
//! firing of the window that ends last; a later firing of the same window
//! (an update after a late record) replaces it, a firing of an older window
//! does not. Early firings are ignored unless asked for
//! ([`LatestWindows::include_early`]): they are not final. The sink takes
//! a lock once per batch, not per record.
//!
//! [`LatestWindows::scope`] serves `GET {path}` (every key, ordered by key)
//! and `GET {path}/top?n=10` (the `n` keys with the highest score, the
//! score being a function of the result given at construction).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use actix_web::{web, HttpRequest, HttpResponse, Scope};
use serde::{Deserialize, Serialize};

use crate::{Record, Sink, SinkError, Timing, Window, WindowResult};

use super::error_json;

/// How many keys `top` returns when `n` is not given, and at most.
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 10_000;

type Score<K, R> = Arc<dyn Fn(&WindowResult<K, R>) -> f64 + Send + Sync>;

/// The latest window result per key, readable from any thread; see the
/// module docs. Cheap to clone; clones share the results.
pub struct LatestWindows<K, R> {
    latest: Arc<RwLock<BTreeMap<K, WindowResult<K, R>>>>,
    score: Score<K, R>,
    include_early: bool,
}

impl<K, R> Clone for LatestWindows<K, R> {
    fn clone(&self) -> Self {
        LatestWindows {
            latest: Arc::clone(&self.latest),
            score: Arc::clone(&self.score),
            include_early: self.include_early,
        }
    }
}

impl<K, R> fmt::Debug for LatestWindows<K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.latest.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("LatestWindows").field("keys", &keys).field("include_early", &self.include_early).finish()
    }
}

/// One result as the query API shows it: the window result and its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredResult<K, R> {
    /// The key.
    pub key: K,
    /// The window.
    pub window: Window,
    /// The aggregate.
    pub value: R,
    /// Why the window fired.
    pub timing: Timing,
    /// The user's score of this result.
    pub score: f64,
}

impl<K, R> LatestWindows<K, R>
where
    K: Ord + Clone + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    /// Empty; `score` ranks results for [`Self::top`] (for example the count
    /// of a `Count` aggregate: `|r| r.value as f64`).
    pub fn new(score: impl Fn(&WindowResult<K, R>) -> f64 + Send + Sync + 'static) -> Self {
        LatestWindows { latest: Arc::default(), score: Arc::new(score), include_early: false }
    }

    /// Also keep early firings (they are replaced by the window's on-time
    /// firing). Set this before taking [`Self::sink`].
    pub fn include_early(mut self, yes: bool) -> Self {
        self.include_early = yes;
        self
    }

    /// A sink that updates these results; use it once in a topology.
    pub fn sink(&self) -> LatestSink<K, R> {
        LatestSink { into: self.clone() }
    }

    /// Offers one result: kept if it is the newest for its key.
    pub fn offer(&self, r: WindowResult<K, R>) {
        if let Ok(mut m) = self.latest.write() {
            self.offer_locked(&mut m, r);
        }
    }

    fn offer_locked(&self, m: &mut BTreeMap<K, WindowResult<K, R>>, r: WindowResult<K, R>) {
        if r.timing == Timing::Early && !self.include_early {
            return;
        }
        match m.get_mut(&r.key) {
            // A later firing of the newest window replaces it; an older
            // window's firing (an update after a late record) does not.
            Some(cur) if r.window.end >= cur.window.end => *cur = r,
            Some(_) => {}
            None => {
                m.insert(r.key.clone(), r);
            }
        }
    }

    /// The latest result of every key, ordered by key.
    pub fn latest(&self) -> Vec<ScoredResult<K, R>> {
        let m = self.latest.read().map(|m| m.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        m.into_iter().map(|r| self.scored(r)).collect()
    }

    /// The latest result of one key.
    pub fn get(&self, key: &K) -> Option<ScoredResult<K, R>> {
        let r = self.latest.read().ok().and_then(|m| m.get(key).cloned());
        r.map(|r| self.scored(r))
    }

    /// The `n` keys whose latest result scores highest, highest first (ties
    /// by key).
    pub fn top(&self, n: usize) -> Vec<ScoredResult<K, R>> {
        let mut all = self.latest();
        all.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        all.truncate(n);
        all
    }

    /// Number of keys with a result.
    pub fn len(&self) -> usize {
        self.latest.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no key has a result yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn scored(&self, r: WindowResult<K, R>) -> ScoredResult<K, R> {
        let score = (self.score)(&r);
        ScoredResult { key: r.key, window: r.window, value: r.value, timing: r.timing, score }
    }
}

impl<K, R> LatestWindows<K, R>
where
    K: Ord + Clone + Serialize + Send + Sync + 'static,
    R: Clone + Serialize + Send + Sync + 'static,
{
    /// An actix-web scope serving `GET {path}` and `GET {path}/top?n=10`,
    /// for `App::service` (e.g. `latest.scope("/api/results")`).
    pub fn scope(&self, path: &str) -> Scope {
        web::scope(path)
            .app_data(web::Data::new(self.clone()))
            .route("", web::get().to(all::<K, R>))
            .route("/top", web::get().to(top::<K, R>))
    }
}

/// The sink half of a [`LatestWindows`].
pub struct LatestSink<K, R> {
    into: LatestWindows<K, R>,
}

impl<K, R> fmt::Debug for LatestSink<K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LatestSink")
    }
}

impl<K, R> Sink<WindowResult<K, R>> for LatestSink<K, R>
where
    K: Ord + Clone + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    fn write(&mut self, batch: &mut Vec<Record<WindowResult<K, R>>>) -> Result<(), SinkError> {
        let mut m = self.into.latest.write().map_err(|_| SinkError::Other("LatestWindows: lock poisoned".into()))?;
        for r in batch.drain(..) {
            self.into.offer_locked(&mut m, r.value);
        }
        Ok(())
    }
}

/// `GET {path}`.
async fn all<K, R>(latest: web::Data<LatestWindows<K, R>>) -> HttpResponse
where
    K: Ord + Clone + Serialize + Send + Sync + 'static,
    R: Clone + Serialize + Send + Sync + 'static,
{
    HttpResponse::Ok().json(latest.latest())
}

#[derive(Debug, Deserialize)]
struct TopQuery {
    n: Option<usize>,
}

/// `GET {path}/top?n=`.
async fn top<K, R>(req: HttpRequest, latest: web::Data<LatestWindows<K, R>>) -> HttpResponse
where
    K: Ord + Clone + Serialize + Send + Sync + 'static,
    R: Clone + Serialize + Send + Sync + 'static,
{
    let n = match web::Query::<TopQuery>::from_query(req.query_string()) {
        Ok(q) => q.n.unwrap_or(DEFAULT_TOP),
        Err(e) => {
            return HttpResponse::BadRequest().json(error_json(format!("n must be a whole number ≥ 0: {e}")));
        }
    };
    if n > MAX_TOP {
        return HttpResponse::BadRequest().json(error_json(format!("n must be at most {MAX_TOP}, got {n}")));
    }
    HttpResponse::Ok().json(latest.top(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(key: &str, start: i64, value: u64, timing: Timing) -> WindowResult<String, u64> {
        WindowResult { key: key.into(), window: Window::new(start, start + 10), value, timing }
    }

    #[test]
    fn keeps_the_newest_window_per_key_and_its_latest_firing() {
        let l = LatestWindows::new(|r: &WindowResult<String, u64>| r.value as f64);
        l.offer(r("a", 0, 1, Timing::OnTime));
        l.offer(r("a", 10, 2, Timing::OnTime));
        l.offer(r("a", 0, 9, Timing::Late)); // an older window: ignored
        l.offer(r("a", 10, 3, Timing::Late)); // the same window again: replaces
        l.offer(r("b", 0, 5, Timing::Early)); // early: ignored by default
        let got: Vec<_> = l.latest().into_iter().map(|s| (s.key, s.window.start, s.value)).collect();
        assert_eq!(got, vec![("a".to_string(), 10, 3)]);
    }

    #[test]
    fn top_orders_by_score_then_key_and_takes_n() {
        let l = LatestWindows::new(|r: &WindowResult<String, u64>| r.value as f64);
        for (k, v) in [("a", 1), ("b", 7), ("c", 7), ("d", 3)] {
            l.offer(r(k, 0, v, Timing::OnTime));
        }
        let got: Vec<_> = l.top(3).into_iter().map(|s| (s.key, s.score)).collect();
        assert_eq!(got, vec![("b".to_string(), 7.0), ("c".to_string(), 7.0), ("d".to_string(), 3.0)]);
    }
}
