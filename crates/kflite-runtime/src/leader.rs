//! Leader election on a coordination.k8s.io Lease, as client-go does it:
//! a replica takes the lease when it is free or its holder has not renewed it
//! for `lease_duration` (measured on the local clock, so clock skew between
//! nodes does not matter), renews it every `renew_every`, and gives it up on
//! shutdown so the standby takes over at once. A standby watches the Lease
//! between attempts, so a released Lease is taken within a round trip, not a
//! renew period.

use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};

use crate::shutdown::Shutdown;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

impl LeaderConfig {
    pub fn new(namespace: &str, lease_name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// What this replica last saw of the lease, to judge expiry by the local clock.
struct Observed {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Instant,
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Option<Observed>,
    /// resourceVersion of the Lease as last read, to watch for its next change.
    seen_version: Option<String>,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            seen_version: None,
        }
    }

    /// Wait until this replica holds the lease.
    pub async fn acquire(&mut self) -> Result<(), kube::Error> {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "leader election: lease update failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.renew_every) => {}
                () = self.lease_changed() => {}
            }
        }
    }

    /// Resolves when the Lease changes after the version last read (a
    /// release, a renewal); never, when it cannot be watched (the caller's
    /// timer then paces the retries).
    async fn lease_changed(&self) {
        if let Some(version) = &self.seen_version {
            let wp = WatchParams::default().fields(&format!("metadata.name={}", self.config.lease_name));
            if let Ok(stream) = self.api.watch(&wp, version).await {
                let mut stream = stream.boxed();
                if let Ok(Some(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_))) =
                    stream.try_next().await
                {
                    return;
                }
            }
        }
        std::future::pending::<()>().await;
    }

    /// Renew until a renewal has failed for a whole lease duration (then
    /// another replica may already lead: the caller must stop working).
    pub async fn hold(&mut self) {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => {
                    tracing::error!(identity = %self.config.identity, "leader election: lease taken by another replica");
                    return;
                }
                Err(err) => tracing::warn!(%err, "leader election: renewal failed"),
            }
            if last_ok.elapsed() >= self.config.lease_duration {
                tracing::error!("leader election: could not renew the lease in time");
                return;
            }
        }
    }

    /// Give the lease up (best effort) so a standby need not wait for expiry.
    pub async fn release(&mut self) {
        let Ok(mut lease) = self.api.get(&self.config.lease_name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(err) = self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%err, "leader election: could not release the lease");
        }
    }

    /// One round: Ok(true) when we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let me = self.config.identity.clone();
        let secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = self.api.get_opt(&self.config.lease_name).await?;
        self.seen_version = current.as_ref().and_then(|l| l.metadata.resource_version.clone());
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renew: spec.renew_time.clone(),
                at: Instant::now(),
            });
        }
        let held_by_me = holder.as_deref() == Some(me.as_str());
        let duration =
            Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(secs)).unwrap_or(0));
        let expired = self.observed.as_ref().is_some_and(|o| o.at.elapsed() >= duration);
        if !(held_by_me || holder.is_none() || expired) {
            return Ok(false);
        }
        let new = lease.spec.get_or_insert_with(Default::default);
        if !held_by_me {
            new.acquire_time = Some(now.clone());
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new.holder_identity = Some(me);
        new.lease_duration_seconds = Some(secs);
        new.renew_time = Some(now);
        // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                let spec = written.spec.unwrap_or_default();
                self.observed = Some(Observed {
                    holder: spec.holder_identity,
                    renew: spec.renew_time,
                    at: Instant::now(),
                });
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Run `work` only while this replica leads.
///
/// Waits for the Lease (or `shutdown`), calls `on_change(true)`, runs `work`
/// with a stop signal that fires on `shutdown` or when the Lease is lost, and
/// once `work` has returned calls `on_change(false)` and releases the Lease,
/// so the standby takes over without waiting for it to expire.
/// `Ok(None)`: shut down before becoming leader.
pub async fn lead<T, Fut>(
    client: Client,
    config: LeaderConfig,
    shutdown: Shutdown,
    on_change: impl Fn(bool),
    work: impl FnOnce(Shutdown) -> Fut,
) -> Result<Option<T>, kube::Error>
where
    Fut: Future<Output = T>,
{
    let identity = config.identity.clone();
    let mut elector = LeaderElector::new(client, config);
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        () = shutdown.clone() => return Ok(None),
    }
    tracing::info!(%identity, "became leader");
    on_change(true);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = {
        let shutdown = shutdown.clone();
        crate::shutdown::on(async move {
            tokio::select! {
                () = shutdown => {}
                _ = lost_rx => {}
            }
        })
    };
    let hold = async {
        tokio::select! {
            () = elector.hold() => { let _ = lost_tx.send(()); }
            () = shutdown.clone() => {}
        }
    };
    let work = work(stop);
    tokio::pin!(work);
    // Work that ends on its own (an error) stops the renewals too.
    let result = tokio::select! {
        result = &mut work => result,
        () = hold => work.await,
    };
    on_change(false);
    elector.release().await;
    tracing::info!(%identity, "released the leader lease");
    Ok(Some(result))
}
