//! Read models fed by committed events; rebuilt from the log at start.
