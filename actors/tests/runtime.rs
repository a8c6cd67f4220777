//! The actor runtime over a real sled store and the Dummy cloud.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    Connectors, ImageFilters, LaunchRequest, LaunchedVm, Quotas,
};
use infralog_actors::decide::infrastructure::{RequestedVm, ResourceRequest};
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::{
    ActorConfig, ActorError, InfrastructureRequest, Registry, VmRequest,
};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::infrastructure::{ContextualizationPlan, InfrastructureEvent};
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::{CloudRef, FeatureFact, InfId, OwnerRecord, VmId};
use infralog_events::{EventStore, Metadata, SledStore, SledStoreConfig, StreamId};

fn owner() -> OwnerRecord {
    OwnerRecord {
        username: "u".into(),
        salt: [1; 16],
        digest: [2; 32],
        via_token: false,
    }
}

fn cloud(kind: &str) -> CloudRef {
    CloudRef {
        id: kind.to_lowercase(),
        kind: kind.into(),
        host: String::new(),
    }
}

fn create(
    systems: &[&str],
    kind: &str,
    plan: Option<ContextualizationPlan>,
) -> InfrastructureRequest {
    InfrastructureRequest::Create {
        owners: vec![owner()],
        tosca: None,
        resources: ResourceRequest {
            radl: "the radl".into(),
            request_radl: None,
            vms: systems
                .iter()
                .map(|s| RequestedVm {
                    system: s.to_string(),
                    cloud: cloud(kind),
                    new_password: true,
                })
                .collect(),
            contextualization: plan,
        },
        credentials: HashMap::new(),
        asynchronous: false,
    }
}

fn infra_events(store: &SledStore, id: InfId) -> Vec<InfrastructureEvent> {
    let stream = StreamId::new(id.stream_name()).expect("valid");
    store
        .read_stream(&stream, 1, usize::MAX)
        .expect("reads")
        .iter()
        .map(|e| InfrastructureEvent::from_envelope(e).expect("decodes"))
        .collect()
}

fn vm_events(store: &SledStore, id: InfId, vm: u32) -> Vec<VmEvent> {
    let stream = StreamId::new(id.vm_stream_name(VmId(vm))).expect("valid");
    store
        .read_stream(&stream, 1, usize::MAX)
        .expect("reads")
        .iter()
        .map(|e| VmEvent::from_envelope(e).expect("decodes"))
        .collect()
}

fn types(events: &[InfrastructureEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type()).collect()
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SledStore>,
    registry: Registry,
}

fn world_with(connectors: Connectors, config: ActorConfig) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SledStore::open(SledStoreConfig::new(dir.path())).expect("opens"));
    let registry = Registry::new(store.clone(), connectors, config);
    World {
        _dir: dir,
        store,
        registry,
    }
}

fn world() -> World {
    world_with(Connectors::builtin(), ActorConfig::default())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix::System::new().block_on(future)
}

#[test]
fn creating_launches_every_vm_and_records_intent_and_outcome() {
    block_on(async {
        let world = world();
        let id = InfId::new_v1(&[1; 6]);
        let outcome = world
            .registry
            .infrastructure(
                id,
                create(
                    &["front", "wn", "wn"],
                    "Dummy",
                    Some(ContextualizationPlan::Disabled),
                ),
                Metadata::default(),
            )
            .await
            .expect("the Dummy cloud never fails");
        assert_eq!(outcome.vm_ids, [VmId(0), VmId(1), VmId(2)]);
        assert_eq!(outcome.position, world.store.head_position());
        assert_eq!(
            types(&infra_events(&world.store, id)),
            [
                "InfrastructureCreated",
                "ResourcesRequested",
                "ResourcesLaunched",
                "ContextualizationStarted",
                "ContextualizationFinished"
            ]
        );
        for vm in 0..3 {
            let events = vm_events(&world.store, id, vm);
            let [VmEvent::Launched {
                new_password: Some(password),
                facts,
                ..
            }] = events.as_slice()
            else {
                panic!("VM {vm} has one launch: {events:?}");
            };
            assert_eq!(password.len(), 8);
            assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(facts.contains(&FeatureFact::text("provider.type", "Dummy")));
        }
        world.registry.shutdown();
    });
}

#[test]
fn simulated_contextualization_finishes_after_its_delay() {
    block_on(async {
        let world = world();
        let id = InfId::new_v1(&[2; 6]);
        world
            .registry
            .infrastructure(
                id,
                create(
                    &["a"],
                    "Dummy",
                    Some(ContextualizationPlan::Simulated { duration_ms: 200 }),
                ),
                Metadata::default(),
            )
            .await
            .expect("created");
        let started = types(&infra_events(&world.store, id));
        assert_eq!(started.last(), Some(&"ContextualizationProgressed"));
        assert!(!started.contains(&"ContextualizationFinished"));
        actix::clock::sleep(Duration::from_millis(600)).await;
        let events = infra_events(&world.store, id);
        assert_eq!(
            events.last(),
            Some(&InfrastructureEvent::ContextualizationFinished {
                run: 1,
                configured: true
            })
        );
        world.registry.shutdown();
    });
}

#[test]
fn stopping_starting_and_destroying_reach_every_vm() {
    block_on(async {
        let world = world();
        let id = InfId::new_v1(&[3; 6]);
        let registry = &world.registry;
        registry
            .infrastructure(id, create(&["a", "b"], "Dummy", None), Metadata::default())
            .await
            .expect("created");
        registry
            .infrastructure(
                id,
                InfrastructureRequest::Stop {
                    credentials: HashMap::new(),
                },
                Metadata::default(),
            )
            .await
            .expect("stopped");
        assert_eq!(
            vm_events(&world.store, id, 1).last(),
            Some(&VmEvent::Stopped)
        );
        registry
            .vm(
                id,
                VmId(0),
                VmRequest::Start {
                    credentials: CloudCredentials::default(),
                },
                Metadata::default(),
            )
            .await
            .expect("VM 0 started");
        assert_eq!(
            vm_events(&world.store, id, 0).last(),
            Some(&VmEvent::Started)
        );
        assert_eq!(
            vm_events(&world.store, id, 1).last(),
            Some(&VmEvent::Stopped)
        );
        registry
            .infrastructure(
                id,
                InfrastructureRequest::Destroy {
                    force: false,
                    asynchronous: false,
                    credentials: HashMap::new(),
                },
                Metadata::default(),
            )
            .await
            .expect("destroyed");
        for vm in 0..2 {
            assert_eq!(
                vm_events(&world.store, id, vm).last(),
                Some(&VmEvent::Destroyed)
            );
        }
        assert_eq!(
            infra_events(&world.store, id).last(),
            Some(&InfrastructureEvent::Destroyed)
        );
        let again = registry
            .infrastructure(
                id,
                InfrastructureRequest::Stop {
                    credentials: HashMap::new(),
                },
                Metadata::default(),
            )
            .await;
        assert_eq!(again, Err(ActorError::Domain(DomainError::NotFound)));
        let vm_again = registry
            .vm(
                id,
                VmId(0),
                VmRequest::Stop {
                    credentials: CloudCredentials::default(),
                },
                Metadata::default(),
            )
            .await;
        assert_eq!(vm_again, Err(ActorError::Domain(DomainError::DeletedVm)));
        world.registry.shutdown();
    });
}

/// A cloud that panics on launch and waits on stop: for panic isolation and full
/// mailboxes.
struct MischievousCloud;

impl CloudConnector for MischievousCloud {
    fn kind(&self) -> &'static str {
        "Mischief"
    }
    fn launch(&self, request: LaunchRequest, _: &CloudCredentials) -> CloudFuture<LaunchedVm> {
        if request.system == "panics" {
            panic!("a bug in a connector");
        }
        Box::pin(std::future::ready(Ok(LaunchedVm {
            cloud_vm_id: "1".into(),
            facts: Vec::new(),
        })))
    }
    fn stop(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(async {
            actix::clock::sleep(Duration::from_millis(500)).await;
            Ok(())
        })
    }
    fn start(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn reboot(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn alter(
        &self,
        _: &CloudVmRef,
        _: AlterRequest,
        _: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
    fn snapshot(
        &self,
        _: &CloudVmRef,
        _: u32,
        _: &str,
        _: &CloudCredentials,
    ) -> CloudFuture<String> {
        Box::pin(std::future::ready(Ok(String::new())))
    }
    fn destroy(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn delete_image(&self, _: &str, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn images(&self, _: &ImageFilters, _: &CloudCredentials) -> CloudFuture<Vec<CloudImage>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
    fn quotas(&self, _: &CloudCredentials) -> CloudFuture<Quotas> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

fn mischievous_world(config: ActorConfig) -> World {
    let mut connectors = Connectors::builtin();
    connectors.register(Arc::new(MischievousCloud));
    world_with(connectors, config)
}

#[test]
fn a_panicking_launch_fails_its_request_and_leaves_others_serving() {
    block_on(async {
        let world = mischievous_world(ActorConfig::default());
        let broken = InfId::new_v1(&[4; 6]);
        let healthy = InfId::new_v1(&[5; 6]);
        let result = world
            .registry
            .infrastructure(
                broken,
                create(&["panics"], "Mischief", None),
                Metadata::default(),
            )
            .await;
        match result {
            Err(ActorError::Cloud(message)) => {
                assert!(message.starts_with("Error adding VMs:"), "{message}");
                assert!(message.contains("internal error"), "{message}");
            }
            other => panic!("the panic must fail the request, got {other:?}"),
        }
        world
            .registry
            .infrastructure(
                healthy,
                create(&["fine"], "Mischief", None),
                Metadata::default(),
            )
            .await
            .expect("other infrastructures keep serving");
        // As in IM, a new infrastructure whose VMs all failed is destroyed.
        assert_eq!(
            infra_events(&world.store, broken).last(),
            Some(&InfrastructureEvent::Destroyed)
        );
        world.registry.shutdown();
    });
}

#[test]
fn a_full_mailbox_answers_busy_at_once() {
    block_on(async {
        let world = mischievous_world(ActorConfig {
            mailbox_capacity: 2,
            ..ActorConfig::default()
        });
        let id = InfId::new_v1(&[6; 6]);
        let registry = world.registry.clone();
        registry
            .infrastructure(id, create(&["a"], "Mischief", None), Metadata::default())
            .await
            .expect("created");
        // Each stop holds the actor for 500 ms; fire many at once.
        let stops: Vec<_> = (0..12)
            .map(|_| {
                let registry = registry.clone();
                actix::spawn(async move {
                    registry
                        .infrastructure(
                            id,
                            InfrastructureRequest::Stop {
                                credentials: HashMap::new(),
                            },
                            Metadata::default(),
                        )
                        .await
                })
            })
            .collect();
        // The first stop holds the actor; those that got in wait in its mailbox.
        actix::clock::sleep(Duration::from_millis(150)).await;
        let (waiting, _) = registry.mailbox_depths();
        assert!(
            (1..=2).contains(&waiting.waiting) && waiting.deepest == waiting.waiting,
            "{waiting:?}"
        );
        let mut busy = 0;
        let mut done = 0;
        for stop in stops {
            match stop.await.expect("the task ends") {
                Err(ActorError::Busy) => busy += 1,
                Ok(_) => done += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(busy > 0, "a flood must meet a full mailbox");
        assert!(done > 0, "queued commands still run");
        // Handled and refused alike were counted out.
        let (infrastructures, vms) = registry.mailbox_depths();
        assert_eq!((infrastructures.waiting, infrastructures.deepest), (0, 0));
        assert_eq!((vms.waiting, vms.deepest), (0, 0));
        // Commands still waiting when the actors stop are dropped, and counted out.
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let registry = registry.clone();
                actix::spawn(async move {
                    registry
                        .infrastructure(
                            id,
                            InfrastructureRequest::Stop {
                                credentials: HashMap::new(),
                            },
                            Metadata::default(),
                        )
                        .await
                })
            })
            .collect();
        actix::clock::sleep(Duration::from_millis(150)).await;
        assert!(registry.mailbox_depths().0.waiting >= 1);
        world.registry.shutdown();
        assert_eq!(registry.mailbox_depths().0.waiting, 0);
        for stop in waiting {
            assert!(stop.await.expect("the task ends").is_err());
        }
    });
}

#[test]
fn a_restart_resumes_an_unfinished_contextualization() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = InfId::new_v1(&[7; 6]);
    block_on(async {
        let store = Arc::new(SledStore::open(SledStoreConfig::new(dir.path())).expect("opens"));
        let registry = Registry::new(store.clone(), Connectors::builtin(), ActorConfig::default());
        registry
            .infrastructure(
                id,
                create(
                    &["a"],
                    "Dummy",
                    Some(ContextualizationPlan::Simulated { duration_ms: 300 }),
                ),
                Metadata::default(),
            )
            .await
            .expect("created");
        registry.shutdown();
        drop(registry);
        store.close();
    });
    block_on(async {
        let store = Arc::new(SledStore::open(SledStoreConfig::new(dir.path())).expect("reopens"));
        assert!(!types(&infra_events(&store, id)).contains(&"ContextualizationFinished"));
        let registry = Registry::new(store.clone(), Connectors::builtin(), ActorConfig::default());
        registry
            .infrastructure(id, InfrastructureRequest::Resume, Metadata::default())
            .await
            .expect("resumes");
        actix::clock::sleep(Duration::from_millis(700)).await;
        assert!(types(&infra_events(&store, id)).contains(&"ContextualizationFinished"));
        registry.shutdown();
    });
}

fn imported_infrastructure() -> InfrastructureRequest {
    use infralog_events::domain::infrastructure::{
        ImportedInfrastructure, ImportedVm, ImportedVmStatus,
    };
    InfrastructureRequest::Import {
        imported: Box::new(ImportedInfrastructure {
            owners: vec![owner()],
            tosca: None,
            radl: "system a ( )".into(),
            vms: vec![ImportedVm {
                system: "a".into(),
                cloud: cloud("Dummy"),
                requested_radl: "system a ( )".into(),
                info_radl: "system a ( )".into(),
                cloud_vm_id: Some("c0".into()),
                status: ImportedVmStatus::Running,
                configured: Some(true),
                created_at_s: 1_700_000_000,
            }],
            configured: Some(true),
            contmsg: String::new(),
            auto_delete_snapshots: Vec::new(),
            created_at_s: 1_700_000_000,
        }),
    }
}

/// A new id is imported without a boundary; an evicted one, and a new one whose
/// earlier import stopped after its VM events, get one first.
#[test]
fn an_import_of_a_used_id_starts_with_a_history_boundary() {
    block_on(async {
        let world = world();
        let import = |id| {
            world
                .registry
                .infrastructure(id, imported_infrastructure(), Metadata::default())
        };
        let fresh = InfId::random();
        import(fresh).await.expect("imports");
        assert_eq!(
            types(&infra_events(&world.store, fresh)),
            ["InfrastructureImported"]
        );

        let evicted = InfId::random();
        world
            .registry
            .infrastructure(evicted, create(&["a"], "Dummy", None), Metadata::default())
            .await
            .expect("creates");
        world
            .registry
            .infrastructure(evicted, InfrastructureRequest::Evict, Metadata::default())
            .await
            .expect("evicts");
        import(evicted).await.expect("imports again");
        let events = types(&infra_events(&world.store, evicted));
        assert_eq!(
            events[events.len() - 3..],
            [
                "InfrastructureEvicted",
                "EpochStarted",
                "InfrastructureImported"
            ]
        );

        let interrupted = InfId::random();
        let leftover = VmEvent::Imported {
            cloud: cloud("Dummy"),
            cloud_vm_id: Some("old".into()),
            status: infralog_events::domain::infrastructure::ImportedVmStatus::Running,
            auto_delete_snapshots: Vec::new(),
        };
        world
            .store
            .append(infralog_events::AppendRequest {
                stream: StreamId::new(interrupted.vm_stream_name(VmId(0))).expect("valid"),
                expected: infralog_events::ExpectedVersion::Exact(0),
                events: vec![leftover.to_new_event(Metadata::default())],
            })
            .await
            .expect("appends");
        import(interrupted).await.expect("imports");
        assert_eq!(
            types(&infra_events(&world.store, interrupted)),
            ["EpochStarted", "InfrastructureImported"]
        );
        world.registry.shutdown();
    });
}
