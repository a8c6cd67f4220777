//! Prometheus metrics of a running server (`GET /metrics`).
//!
//! The counters are fed at the existing boundaries: the HTTP layer (one access
//! record per request, [`access`]), the log's writer thread (through the event
//! store's [`CommitObserver`] hook, so the events crate stays free of metrics
//! libraries), and the cloud connectors (wrapped once at start, [`connectors`]).
//! What the server already knows (live actors, the messages waiting in their
//! mailboxes, the log's size on disk) is sampled when `/metrics` is read rather
//! than kept up to date on every change: the actors crate counts its mailboxes in
//! plain atomics (`infralog_actors::runtime::MailboxDepth`) and knows no metrics
//! library.
//!
//! Labels have bounded values only: route templates, never request paths; cloud
//! kinds, never cloud ids; never a user name.

pub mod access;
pub mod connectors;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use infralog_actors::runtime::{MailboxDepth, Registry as ActorRegistry};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::infrastructure::InfrastructureEvent;
use infralog_events::{CommitObserver, Envelope};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The media type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The labels of a request's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template (`/infrastructures/{infid}`), or `unmatched`.
    pub route: String,
    /// The answer's status code.
    pub status: u16,
}

/// The labels of a cloud call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    /// The connector's credential type (`Dummy`, `Docker`).
    pub cloud: String,
    /// The call (`launch`, `stop`, `observe`, ...).
    pub operation: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// One label saying how something ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// How it ended.
    pub outcome: String,
}

/// One label naming a kind of actor.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `infrastructure` or `vm`.
    pub kind: String,
}

/// One label naming the kind of actor whose mailboxes are counted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabels {
    /// `infrastructure`, `vm` or a facade's actor (`imc_placement`).
    pub actor: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s: a Dummy read answers in well under a millisecond, a create
    // with Argon2 hashing in tens of milliseconds, a real cloud call in seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of the server, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    data_dir: PathBuf,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    events_appended: Counter,
    group_commit_events: Histogram,
    fsync_seconds: Histogram,
    connector_calls: Family<ConnectorLabels, Counter>,
    connector_duration: HistogramFamily<ConnectorLabels>,
    contextualization_runs: Family<OutcomeLabels, Counter>,
    live_actors: Family<KindLabels, Gauge>,
    mailbox_depth: Family<MailboxLabels, Gauge>,
    mailbox_depth_max: Family<MailboxLabels, Gauge>,
    log_size_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of a server whose log lives in `data_dir` (its size is
    /// reported), every counter at zero.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let mut registry = Registry::with_prefix("infralog");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method, route template and status",
            http_duration.clone(),
        );
        let events_appended = Counter::default();
        registry.register(
            "events_appended",
            "Events written durably to the log (appends and imports)",
            events_appended.clone(),
        );
        let group_commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "group_commit_events",
            "Events per group commit (one flush each)",
            group_commit_events.clone(),
        );
        let fsync_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "log_fsync_duration_seconds",
            "Time of the log's blocking flush, one per group commit",
            fsync_seconds.clone(),
        );
        let connector_calls = Family::<ConnectorLabels, Counter>::default();
        registry.register(
            "connector_calls",
            "Cloud calls, by cloud type, operation and outcome",
            connector_calls.clone(),
        );
        let connector_duration: HistogramFamily<ConnectorLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "connector_call_duration_seconds",
            "Time of cloud calls, by cloud type, operation and outcome",
            connector_duration.clone(),
        );
        let contextualization_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "contextualization_runs",
            "Contextualization runs started, and ended configured or unconfigured",
            contextualization_runs.clone(),
        );
        let live_actors = Family::<KindLabels, Gauge>::default();
        registry.register(
            "live_actors",
            "Infrastructure and VM actors running (idle ones stop; the log rebuilds them)",
            live_actors.clone(),
        );
        let mailbox_depth = Family::<MailboxLabels, Gauge>::default();
        registry.register(
            "mailbox_depth",
            "Messages waiting in the mailboxes of every actor of a kind: sent, not yet taken by a handler",
            mailbox_depth.clone(),
        );
        let mailbox_depth_max = Family::<MailboxLabels, Gauge>::default();
        registry.register(
            "mailbox_depth_max",
            "Messages waiting in the deepest mailbox of one running actor of a kind",
            mailbox_depth_max.clone(),
        );
        let log_size_bytes = Gauge::default();
        registry.register(
            "log_size_bytes",
            "Bytes the data directory (the event log) takes on disk",
            log_size_bytes.clone(),
        );
        Metrics {
            registry,
            data_dir: data_dir.into(),
            http_requests,
            http_duration,
            events_appended,
            group_commit_events,
            fsync_seconds,
            connector_calls,
            connector_duration,
            contextualization_runs,
            live_actors,
            mailbox_depth,
            mailbox_depth_max,
            log_size_bytes,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, labels: &HttpLabels, duration: Duration) {
        self.http_requests.get_or_create(labels).inc();
        self.http_duration
            .get_or_create(labels)
            .observe(duration.as_secs_f64());
    }

    /// Counts one cloud call.
    pub fn observe_connector_call(
        &self,
        cloud: &str,
        operation: &str,
        ok: bool,
        duration: Duration,
    ) {
        let labels = ConnectorLabels {
            cloud: cloud.to_owned(),
            operation: operation.to_owned(),
            outcome: if ok { "ok" } else { "error" }.to_owned(),
        };
        self.connector_calls.get_or_create(&labels).inc();
        self.connector_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// The hook the event store calls after each group commit.
    pub fn commit_observer(self: &Arc<Self>) -> Arc<dyn CommitObserver> {
        Arc::new(StoreHook(Arc::clone(self)))
    }

    /// Samples what is read rather than counted (live actors, their mailboxes and
    /// the facades' in `facade_mailboxes`, the log's size) and renders every
    /// metric in Prometheus' text format.
    pub fn render(
        &self,
        actors: Option<&ActorRegistry>,
        facade_mailboxes: &[(&str, MailboxDepth)],
    ) -> String {
        if let Some(actors) = actors {
            let (infrastructures, vms) = actors.running_actors();
            self.set_live("infrastructure", infrastructures);
            self.set_live("vm", vms);
            let (infrastructures, vms) = actors.mailbox_depths();
            self.set_mailbox("infrastructure", infrastructures);
            self.set_mailbox("vm", vms);
        }
        for (actor, depth) in facade_mailboxes {
            self.set_mailbox(actor, *depth);
        }
        self.log_size_bytes
            .set(i64::try_from(directory_size(&self.data_dir)).unwrap_or(i64::MAX));
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing into a String cannot fail; if the library ever does, say so
            // in the log rather than serve half a document silently.
            tracing::warn!(%error, "encoding the metrics failed");
        }
        text
    }

    /// Sets the live actors of `kind` (the facades' kinds are set by the caller).
    pub fn set_live(&self, kind: &str, count: usize) {
        self.live_actors
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    fn set_mailbox(&self, actor: &str, depth: MailboxDepth) {
        let labels = MailboxLabels {
            actor: actor.to_owned(),
        };
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.mailbox_depth
            .get_or_create(&labels)
            .set(gauge(depth.waiting));
        self.mailbox_depth_max
            .get_or_create(&labels)
            .set(gauge(depth.deepest));
    }

    fn observe_group(&self, envelopes: &[Arc<Envelope>], flush: Duration) {
        self.events_appended.inc_by(envelopes.len() as u64);
        self.group_commit_events.observe(envelopes.len() as f64);
        self.fsync_seconds.observe(flush.as_secs_f64());
        for envelope in envelopes {
            if let Some(outcome) = contextualization_outcome(envelope) {
                self.contextualization_runs
                    .get_or_create(&OutcomeLabels {
                        outcome: outcome.to_owned(),
                    })
                    .inc();
            }
        }
    }
}

/// The writer thread's view of the metrics: counters and histograms only (atomic
/// updates and a type-name comparison per event; a payload is decoded only for the
/// rare end of a contextualization run).
struct StoreHook(Arc<Metrics>);

impl CommitObserver for StoreHook {
    fn group_committed(&self, envelopes: &[Arc<Envelope>], flush: Duration) {
        self.0.observe_group(envelopes, flush);
    }
}

/// `started`, `configured` or `unconfigured` for the events that start and end a
/// contextualization run; `None` for every other event.
fn contextualization_outcome(envelope: &Envelope) -> Option<&'static str> {
    match envelope.event_type.as_str() {
        "ContextualizationStarted" => Some("started"),
        "ContextualizationFinished" => match InfrastructureEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(InfrastructureEvent::ContextualizationFinished { configured, .. }) => {
                Some(if configured {
                    "configured"
                } else {
                    "unconfigured"
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// The bytes of every file under `dir` (sled keeps a handful of files: walking
/// them at each scrape is cheaper than tracking every write).
fn directory_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_size(&entry.path()),
            Ok(_) => entry.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_by_route_template_and_status() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("f"), [0u8; 100]).expect("write");
        let metrics = Metrics::new(dir.path());
        let labels = HttpLabels {
            method: "GET".into(),
            route: "/infrastructures/{infid}".into(),
            status: 404,
        };
        metrics.observe_request(&labels, Duration::from_millis(3));
        metrics.observe_request(&labels, Duration::from_millis(3));
        metrics.observe_connector_call("Dummy", "launch", false, Duration::from_millis(1));
        let placements = MailboxDepth {
            waiting: 5,
            deepest: 3,
        };
        let text = metrics.render(None, &[("imc_placement", placements)]);
        assert!(
            text.contains(
                r#"infralog_http_requests_total{method="GET",route="/infrastructures/{infid}",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"infralog_http_request_duration_seconds_count{method="GET",route="/infrastructures/{infid}",status="404"} 2"#));
        assert!(text.contains(
            r#"infralog_connector_calls_total{cloud="Dummy",operation="launch",outcome="error"} 1"#
        ));
        assert!(text.contains("infralog_log_size_bytes 100"), "{text}");
        assert!(text.contains(r#"infralog_mailbox_depth{actor="imc_placement"} 5"#));
        assert!(text.contains(r#"infralog_mailbox_depth_max{actor="imc_placement"} 3"#));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
