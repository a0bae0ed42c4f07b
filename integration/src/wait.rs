//! Polling with a deadline and a useful error on timeout.

use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// How often conditions are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok(true)` or `deadline` has elapsed.
///
/// An `Err` from `check` is not fatal: daemons are often not ready to answer yet, so the
/// error is remembered as the last observed state and polling goes on. On timeout the
/// error names `what` and the last observed state.
pub fn wait_until<F>(deadline: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Result<bool>,
{
    wait_for(deadline, what, || match check() {
        Ok(true) => Ok(Ok(())),
        Ok(false) => Ok(Err("condition not met".to_string())),
        Err(e) => Err(e),
    })
}

/// Polls `check` until it returns `Ok(Ok(value))`, then returns the value.
///
/// `Ok(Err(state))` means "not yet" and describes what was seen; `Err(e)` is remembered
/// the same way. On timeout the error names `what` and the last state.
pub fn wait_for<T, F>(deadline: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Result<std::result::Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(state)) => state,
            Err(e) => format!("error: {e}"),
        };
        let waited = start.elapsed();
        if waited >= deadline {
            return Err(LabError::Timeout {
                what: what.to_string(),
                waited,
                last,
            });
        }
        thread::sleep(POLL_INTERVAL.min(deadline.saturating_sub(waited)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_true() {
        let mut calls = 0;
        wait_until(Duration::from_secs(5), "third call", || {
            calls += 1;
            Ok(calls >= 3)
        })
        .expect("condition becomes true");
        assert_eq!(calls, 3);
    }

    #[test]
    fn timeout_reports_what_and_last_state() {
        let mut n = 0;
        let err = wait_for::<(), _>(Duration::from_millis(120), "the moon", || {
            n += 1;
            Ok(Err(format!("poll {n}")))
        })
        .expect_err("never true");
        let text = err.to_string();
        assert!(text.contains("the moon"), "{text}");
        assert!(text.contains(&format!("poll {n}")), "{text}");
    }

    #[test]
    fn errors_are_remembered_not_fatal() {
        let mut n = 0;
        let value = wait_for(Duration::from_secs(5), "recovery", || {
            n += 1;
            if n < 2 {
                Err(LabError::Config("not yet".into()))
            } else {
                Ok(Ok(n))
            }
        })
        .expect("recovers");
        assert_eq!(value, 2);
        let err = wait_until(Duration::from_millis(60), "never", || {
            Err(LabError::Config("still broken".into()))
        })
        .expect_err("times out");
        assert!(err.to_string().contains("still broken"), "{err}");
    }
}
