//! Handler tests: the router driven with `oneshot`, over a fresh test `App`.
