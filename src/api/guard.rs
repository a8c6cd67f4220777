//! Who is asking, and whether they own what they ask about.
//!
//! IM's order: a missing header is a 401 before anything else; bad credentials are
//! then an error of the endpoint (401 on four endpoints, 400 elsewhere); for a given
//! infrastructure an unknown id is a 404, another user's is a 403.

use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::web;
use infralog_actors::connectors::CloudCredentials;
use infralog_actors::runtime::Credentials;
use infralog_events::domain::{InfId, OwnerRecord};

use super::errors::{ApiError, Endpoint, Failure};
use super::{AppState, RequestContext};
use crate::auth::ownership::{Owner, PasswordDigest, PasswordHasher};
use crate::auth::{self, AuthHeaderError, CredentialLine, Identity, ImCredential};
use crate::projections::{InfrastructureView, OwnerIndex, ReadModel};

/// Step one, before query validation: the header must be there and readable.
pub fn credential_lines(context: &RequestContext) -> Result<Vec<CredentialLine>, ApiError> {
    // Not read lossily: `user\xaa` and `user\xab` would both become `user\u{fffd}`,
    // one identity for two different credentials.
    let header = match context.request.headers().get(AUTHORIZATION) {
        None => "",
        Some(value) => std::str::from_utf8(value.as_bytes()).map_err(|_| {
            ApiError::im(
                StatusCode::UNAUTHORIZED,
                "Invalid AUTHORIZATION header: it is not UTF-8 text",
            )
        })?,
    };
    auth::parse_authorization(header).map_err(|error| match error {
        AuthHeaderError::Missing => {
            ApiError::im(StatusCode::UNAUTHORIZED, "No authentication data provided")
        }
        // IM answers 500 here; a malformed credential is the client's mistake.
        AuthHeaderError::InvalidItemId(_) => {
            ApiError::im(StatusCode::UNAUTHORIZED, error.to_string())
        }
    })
}

/// Step two, inside the handler: the lines must name an IM user.
pub fn identity(lines: &[CredentialLine], endpoint: Endpoint) -> Result<Identity, ApiError> {
    auth::authenticate(lines).map_err(|invalid| endpoint.error(Failure::InvalidUser(invalid)))
}

/// The cloud credentials of a request, by cloud id, for the connectors.
pub fn cloud_credentials(identity: &Identity) -> Credentials {
    identity
        .clouds
        .iter()
        .map(|cloud| {
            let values = cloud
                .line
                .pairs()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (cloud.id.clone(), CloudCredentials::new(values))
        })
        .collect()
}

fn owner_of(record: &OwnerRecord) -> Owner {
    Owner {
        username: record.username.clone(),
        password: PasswordDigest {
            salt: record.salt,
            digest: record.digest,
        },
        via_token: record.via_token,
    }
}

/// Whether any request line matches any owner (IM's `is_authorized`). Verifying a
/// password the hasher has not seen costs a slow hash, which runs on the blocking
/// pool.
pub async fn is_owner(state: &AppState, owners: &[OwnerRecord], identity: &Identity) -> bool {
    let pairs: Vec<(Owner, ImCredential)> = owners
        .iter()
        .flat_map(|record| {
            identity
                .im
                .iter()
                .filter(|c| c.username == record.username)
                .map(move |c| (owner_of(record), c.clone()))
        })
        .collect();
    if pairs.is_empty() {
        return false;
    }
    let hasher = Arc::clone(&state.hasher);
    let all_known = pairs.iter().all(|(owner, credential)| {
        hasher.is_remembered(
            &owner.password,
            credential.password.as_ref().map(|p| p.expose()),
        )
    });
    if all_known {
        return pairs
            .iter()
            .any(|(owner, c)| hasher.owner_matches(owner, c));
    }
    web::block(move || {
        pairs
            .iter()
            .any(|(owner, c)| hasher.owner_matches(owner, c))
    })
    .await
    .unwrap_or(false)
}

/// The owner records to store for a request's IM lines: an existing record of the
/// same user and password is reused (so a user's infrastructures share a salt and
/// one verification covers all of them); otherwise the digest this process mints
/// for that user and password (one hash, shared by concurrent requests).
pub async fn owner_records(state: &AppState, identity: &Identity) -> Vec<OwnerRecord> {
    let candidates: Vec<(ImCredential, Vec<OwnerRecord>)> = {
        let model = state.projections.read();
        identity
            .im
            .iter()
            .map(|credential| {
                let known = model
                    .owners
                    .entries(&credential.username)
                    .iter()
                    .map(|entry| entry.owner.clone())
                    .collect();
                (credential.clone(), known)
            })
            .collect()
    };
    let hasher = Arc::clone(&state.hasher);
    // A user seen before needs no hash: answer without a trip to the blocking pool.
    if let Some(records) = records_for(&hasher, &candidates, false) {
        return records;
    }
    web::block(move || records_for(&hasher, &candidates, true))
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The records for `candidates`; `None` if that needs a slow hash and `may_hash` is
/// false.
fn records_for(
    hasher: &PasswordHasher,
    candidates: &[(ImCredential, Vec<OwnerRecord>)],
    may_hash: bool,
) -> Option<Vec<OwnerRecord>> {
    let mut records: Vec<OwnerRecord> = Vec::new();
    for (credential, known) in candidates {
        let password = credential.password.as_ref().map(|p| p.expose());
        let mut record = None;
        for candidate in known {
            if candidate.via_token != credential.has_token {
                continue;
            }
            let digest = PasswordDigest {
                salt: candidate.salt,
                digest: candidate.digest,
            };
            if !may_hash && !hasher.is_remembered(&digest, password) {
                return None;
            }
            if hasher.verify(&digest, password) {
                record = Some(candidate.clone());
                break;
            }
        }
        let record = match record {
            Some(record) => record,
            None => {
                let digest = if may_hash {
                    hasher.digest_for_new_owner(&credential.username, password)
                } else {
                    hasher.minted_for_new_owner(&credential.username, password)?
                };
                OwnerRecord {
                    username: credential.username.clone(),
                    salt: digest.salt,
                    digest: digest.digest,
                    via_token: credential.has_token,
                }
            }
        };
        if !records.contains(&record) {
            records.push(record);
        }
    }
    Some(records)
}

/// The served infrastructures the identity owns, without duplicates.
pub async fn owned_infrastructures(state: &AppState, identity: &Identity) -> Vec<InfId> {
    owned_in(state, identity, |model| &model.owners).await
}

/// The infrastructures the identity owns or owned when they were destroyed or
/// evicted, without duplicates (what IM's `/stats` reports).
pub async fn owned_infrastructures_including_gone(
    state: &AppState,
    identity: &Identity,
) -> Vec<InfId> {
    owned_in(state, identity, |model| &model.owners_with_gone).await
}

/// Earlier lives of ids imported again that the identity owned when they ended,
/// the latest one per id, for ids not in `current` (the ids whose current life it
/// owns): an owner a re-import dropped keeps its `/stats` row.
pub async fn owned_earlier_lives(
    state: &AppState,
    identity: &Identity,
    current: &[InfId],
) -> Vec<InfrastructureView> {
    let current: std::collections::HashSet<&InfId> = current.iter().collect();
    let ids = owned_in(state, identity, |model| &model.owners_of_earlier).await;
    let candidates: Vec<Vec<InfrastructureView>> = {
        let model = state.projections.read();
        ids.iter()
            .filter(|id| !current.contains(id))
            .filter_map(|id| model.earlier.get(id).cloned())
            .collect()
    };
    let mut lives = Vec::new();
    for id_lives in candidates {
        for life in id_lives.into_iter().rev() {
            if is_owner(state, &life.owners, identity).await {
                lives.push(life);
                break;
            }
        }
    }
    lives
}

async fn owned_in(
    state: &AppState,
    identity: &Identity,
    index: fn(&ReadModel) -> &OwnerIndex,
) -> Vec<InfId> {
    let groups: Vec<(OwnerRecord, Vec<InfId>)> = {
        let model = state.projections.read();
        identity
            .im
            .iter()
            .flat_map(|credential| index(&model).entries(&credential.username).to_vec())
            .map(|entry| (entry.owner, entry.infrastructures.into_iter().collect()))
            .collect()
    };
    let mut owned = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (owner, infrastructures) in groups {
        if is_owner(state, std::slice::from_ref(&owner), identity).await {
            owned.extend(infrastructures.into_iter().filter(|inf| seen.insert(*inf)));
        }
    }
    owned
}

/// The infrastructure `inf` as of now, if it exists and the identity owns it.
/// Unknown and gone ids are 404, other users' infrastructures 403.
pub async fn owned(
    state: &AppState,
    identity: &Identity,
    inf: &str,
    endpoint: Endpoint,
) -> Result<InfrastructureView, ApiError> {
    let not_found = || endpoint.error(Failure::InfrastructureNotFound);
    let id: InfId = inf.parse().map_err(|_| not_found())?;
    let owners = {
        let model = state.projections.read();
        let view = model
            .infrastructures
            .get(&id)
            .filter(|view| view.is_served())
            .ok_or_else(not_found)?;
        view.owners.clone()
    };
    if !is_owner(state, &owners, identity).await {
        return Err(endpoint.error(Failure::Unauthorized));
    }
    let model = state.projections.read();
    model
        .infrastructures
        .get(&id)
        .filter(|view| view.is_served())
        .cloned()
        .ok_or_else(not_found)
}
