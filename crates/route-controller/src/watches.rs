//! Each watched kind on its own: one missing or late CRD must not stop the
//! others from being routed.
//!
//! Every watch is `Pending` until its first list is done (`Synced`). A watch
//! of an optional kind (the routed kinds and Profile) whose list answers 404
//! is `Absent`: that is logged once, shown in /readyz and in
//! `route_controller_crd_available`, and its watch keeps retrying every few
//! seconds, so installing the CRD later is picked up without a restart.
//! Reconciles start once every required watch is synced and every optional
//! one is synced or absent.

use std::collections::BTreeMap;
use std::time::Duration;

use kflite_runtime::{Health, Status};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;

use crate::desired::SourceKind;
use crate::metrics::Metrics;

/// Something the controller watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Watched {
    Source(SourceKind),
    Profile,
    Routes,
    Grants,
}

impl Watched {
    pub const ALL: [Watched; 6] = [
        Watched::Source(SourceKind::Notebook),
        Watched::Source(SourceKind::Tensorboard),
        Watched::Source(SourceKind::PVCViewer),
        Watched::Profile,
        Watched::Routes,
        Watched::Grants,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Watched::Source(kind) => kind.as_str(),
            Watched::Profile => "Profile",
            Watched::Routes => "HTTPRoute",
            Watched::Grants => "ReferenceGrant",
        }
    }

    /// Routing goes on without it (Gateway API's kinds are what we write: not optional).
    pub fn optional(self) -> bool {
        matches!(self, Watched::Source(_) | Watched::Profile)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Synced,
    Absent,
}

/// The state of every watch, shared by the watch streams and reconciles.
#[derive(Clone)]
pub struct Watches {
    states: tokio::sync::watch::Sender<BTreeMap<Watched, State>>,
    health: Health,
    metrics: Metrics,
}

/// Name of the readiness check of the caches.
pub const CACHES_CHECK: &str = "caches";

impl Watches {
    /// The process's health, for checks other than the watches'.
    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn new(health: Health, metrics: Metrics) -> Self {
        let states = Watched::ALL.into_iter().map(|w| (w, State::Pending)).collect();
        health.set(
            CACHES_CHECK,
            Status::Failing,
            "waiting for the first list of every watched kind",
        );
        for w in Watched::ALL {
            metrics.crd_available.get_or_create(&[("kind", w.name())]).set(0);
        }
        Self {
            states: tokio::sync::watch::Sender::new(states),
            health,
            metrics,
        }
    }

    pub fn state(&self, w: Watched) -> State {
        self.states.borrow().get(&w).copied().unwrap_or(State::Pending)
    }

    /// Whether `w`'s objects are known (listed and watched).
    pub fn is_synced(&self, w: Watched) -> bool {
        self.state(w) == State::Synced
    }

    /// Track one event of `w`'s watch stream.
    pub fn observe<K>(&self, w: Watched, event: &Result<watcher::Event<K>, watcher::Error>) {
        match event {
            Ok(watcher::Event::InitDone) => self.set(w, State::Synced),
            Err(err) if w.optional() && is_not_found(err) => self.set(w, State::Absent),
            Err(err) => tracing::warn!(kind = w.name(), %err, "watch failed; retrying with backoff"),
            Ok(_) => {}
        }
    }

    fn set(&self, w: Watched, state: State) {
        let before = self.state(w);
        if before == state {
            return;
        }
        self.states.send_modify(|m| {
            m.insert(w, state);
        });
        let kind = w.name();
        let check = format!("kind/{kind}");
        match state {
            State::Absent => {
                tracing::warn!(
                    kind,
                    "CRD absent: its objects are not routed until it is installed; other kinds are"
                );
                self.health
                    .set(&check, Status::Degraded, "CRD absent: not watched, retrying");
            }
            State::Synced if before == State::Absent => {
                tracing::info!(kind, "CRD installed: watching and routing it");
                self.health.set(&check, Status::Ok, "");
            }
            State::Synced => self.health.set(&check, Status::Ok, ""),
            State::Pending => {}
        }
        self.metrics
            .crd_available
            .get_or_create(&[("kind", kind)])
            .set(i64::from(state == State::Synced));
    }

    /// Wait until reconciles can trust the caches. Err: the controller is stopping.
    pub async fn wait_ready(&self) -> Result<(), ()> {
        let mut rx = self.states.subscribe();
        rx.wait_for(|m| {
            m.iter().all(|(w, s)| match s {
                State::Synced => true,
                State::Absent => w.optional(),
                State::Pending => false,
            })
        })
        .await
        .map_err(|_| ())?;
        self.health.set(CACHES_CHECK, Status::Ok, "");
        Ok(())
    }
}

/// The list or watch answered 404: the resource is not served (no CRD).
fn is_not_found(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 404,
        watcher::Error::WatchError(s) => s.code == 404,
        _ => false,
    }
}

/// Retry an absent kind's list quickly at first, then every few seconds:
/// a CRD installed later is picked up within `MAX` (one cheap 404 per try).
#[derive(Debug, Default)]
pub struct QuickBackoff {
    next: Option<Duration>,
}

impl QuickBackoff {
    const MIN: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(3);
}

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let current = self.next.unwrap_or(Self::MIN);
        self.next = Some((current * 2).min(Self::MAX));
        Some(current)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = None;
    }
}
