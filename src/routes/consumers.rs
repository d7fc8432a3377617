//! Named durable consumers: `consumer=NAME` on a folder's triggers, and
//! `GET /watches/NAME/consumers`, `DELETE /watches/NAME/consumers/CONSUMER`.
//!
//! Owns: the consumer name's syntax (`[A-Za-z0-9._-]{1,64}`, else `400 bad_consumer`),
//! where a trigger call starts ([`start`]: the cursor sent, acknowledged for the consumer
//! first; else the consumer's stored position; else a fresh first-call cursor, stored as
//! the position and the origin of a consumer seen for the first time), and the listing
//! and delete.
//! Does not own: the `acks` table and its durability (`index`, [`WriteOp::Ack`]), the
//! first-call cursor (`cursor`), what a poll answers from its cursor (`trigger`, `read`),
//! or what the acks free (`cleanup`).

use hyper::{Request, Response, StatusCode};

use super::trigger::{accepted, PollRequest};
use super::{json, AppState, Body, RequestError};
use crate::folder::Folder;
use crate::index::WriteOp;
use crate::stamp::Stamp;

/// The query parameter naming a consumer.
pub(super) const PARAM: &str = "consumer";

/// `waiting` counts at most this many index entries.
const WAITING_CAP: u64 = 100_000;

/// The key of consumer `name` in the index's `acks` table.
pub(crate) fn key(name: &str) -> String {
    format!("consumer/{name}")
}

/// The key of consumer `name`'s origin in `acks`: the first-call cursor it started
/// from. The files indexed before it were never offered to it, so the clean-up after
/// delivery leaves them alone (its position alone would count them as acknowledged).
pub(crate) fn origin_key(name: &str) -> String {
    format!("origin/consumer/{name}")
}

/// Checks a consumer name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub(super) fn check_name(name: &str) -> Result<(), RequestError> {
    if crate::config::valid_consumer_name(name) {
        Ok(())
    } else {
        Err(RequestError::BadParam {
            code: "bad_consumer",
            message: format!(
                "consumer must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-', not {:?}",
                name.chars().take(70).collect::<String>()
            ),
        })
    }
}

/// Where a trigger call starts.
pub(super) enum Start {
    /// Answer from this cursor.
    From(Stamp),
    /// The answer is already made (a first call: `202` with a new cursor).
    Answer(Response<Body>),
}

fn index_down(e: crate::error::IndexError) -> RequestError {
    tracing::error!(error = %e, "index write failed");
    RequestError::Unavailable("the index cannot be written right now")
}

fn read_failed(e: crate::error::IndexError) -> RequestError {
    tracing::error!(error = %e, "index read failed");
    RequestError::Unavailable("the index cannot be read right now")
}

/// Where the trigger call `poll` starts. With `triggerState=S` and a consumer: `S` is
/// acknowledged for it (its position becomes the greater of the two, committed before
/// this returns; never past what the daemon handed out), and the call goes on from `S`
/// (an older `S` replays). Without `triggerState`: a known consumer goes on from its
/// position (the `202` keeps it in `Location`); an unknown one, or no consumer, gets a
/// fresh durable first-call cursor (stored as the new consumer's position).
pub(super) async fn start<B>(
    state: &AppState,
    folder: &Folder,
    poll: &mut PollRequest<'_, B>,
) -> Result<Start, RequestError> {
    let consumer = poll.consumer().map(key);
    match (poll.cursor(), consumer) {
        (Some(cursor), None) => Ok(Start::From(cursor)),
        (Some(cursor), Some(key)) => {
            let stored = folder
                .reader
                .snapshot()
                .and_then(|s| s.ack(&key))
                .map_err(read_failed)?;
            let acked = cursor.min(state.first_cursor.horizon());
            if let (None, Some(name)) = (stored, poll.consumer()) {
                // Named for the first time on a cursor: what came before it was not
                // offered under this name, so the clean-up keeps it.
                let origin = WriteOp::Ack {
                    key: origin_key(name),
                    stamp: acked,
                };
                folder.writer.send(origin).await.map_err(index_down)?;
            }
            if stored.is_none_or(|s| s < acked) {
                folder
                    .writer
                    .apply(WriteOp::Ack { key, stamp: acked })
                    .await
                    .map_err(index_down)?;
            }
            Ok(Start::From(cursor))
        }
        (None, consumer) => {
            if let Some(key) = &consumer {
                let stored = folder
                    .reader
                    .snapshot()
                    .and_then(|s| s.ack(key))
                    .map_err(read_failed)?;
                if let Some(stored) = stored {
                    poll.resume_at(stored);
                    return Ok(Start::From(stored));
                }
            }
            let now = state.first_cursor.now().await.map_err(|e| {
                tracing::error!(error = %e, "cannot record a cursor reservation");
                RequestError::Unavailable("the index cannot be written right now")
            })?;
            if let Some(name) = poll.consumer() {
                let origin = WriteOp::Ack {
                    key: origin_key(name),
                    stamp: now,
                };
                folder.writer.send(origin).await.map_err(index_down)?;
                folder
                    .writer
                    .apply(WriteOp::Ack {
                        key: key(name),
                        stamp: now,
                    })
                    .await
                    .map_err(index_down)?;
            }
            poll.moved_to(now)
                .map(|loc| Start::Answer(accepted(loc, state.retry_after)))
        }
    }
}

/// `GET /watches/NAME/consumers`: `{"value":[{"name","position","waiting"}]}`, `waiting`
/// being the index entries after the position (not checked against the disk), counted up
/// to 100,000.
pub(super) async fn list(state: &AppState, folder: &Folder) -> Response<Body> {
    let reader = folder.reader.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let snapshot = reader.snapshot()?;
        let mut value = Vec::new();
        for (name, position) in snapshot.acks_with_prefix("consumer/")? {
            let waiting = snapshot.count_after(position, WAITING_CAP)?;
            value.push(serde_json::json!({
                "name": name,
                "position": position.to_string(),
                "waiting": waiting,
            }));
        }
        Ok::<_, crate::error::IndexError>(value)
    })
    .await;
    match listed {
        Ok(Ok(value)) => json(
            StatusCode::OK,
            serde_json::json!({ "value": value }).to_string(),
        ),
        Ok(Err(e)) => read_failed(e).into_response(state.retry_after),
        Err(e) => {
            tracing::error!(error = %e, "listing task failed");
            RequestError::Unavailable("internal error").into_response(state.retry_after)
        }
    }
}

/// `DELETE /watches/NAME/consumers/CONSUMER`: `200 {"deleted": CONSUMER}`, or `404`.
pub(super) async fn delete<B>(
    state: &AppState,
    folder: &Folder,
    _req: &Request<B>,
    raw_name: &str,
) -> Response<Body> {
    match try_delete(folder, raw_name).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_delete(folder: &Folder, raw_name: &str) -> Result<Response<Body>, RequestError> {
    let name = percent_encoding::percent_decode_str(raw_name)
        .decode_utf8()
        .map_err(|_| RequestError::BadParam {
            code: "bad_consumer",
            message: "the consumer name is not UTF-8".into(),
        })?;
    check_name(&name)?;
    let key = key(&name);
    let known = folder
        .reader
        .snapshot()
        .and_then(|s| s.ack(&key))
        .map_err(read_failed)?;
    if known.is_none() {
        return Err(RequestError::NotFound {
            code: "consumer_not_found",
            message: format!(
                "no consumer {name:?} in the folder {:?}; GET /watches/{}/consumers lists them",
                folder.name, folder.name
            ),
        });
    }
    folder
        .writer
        .send(WriteOp::Unack(origin_key(&name)))
        .await
        .map_err(index_down)?;
    folder
        .writer
        .apply(WriteOp::Unack(key))
        .await
        .map_err(index_down)?;
    tracing::info!(folder = %folder.name, consumer = %name, "consumer deleted");
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "deleted": name }).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["invoices", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65), "a%2Fb"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
