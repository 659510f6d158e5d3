-- The standalone service's database: its log and its inbox in one file.

-- The log: every accepted notification, in the order accepted. `seq` is the
-- offset, and a notification's per-recipient position; AUTOINCREMENT keeps
-- it growing after the routed rows are deleted.
CREATE TABLE log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The notification as JSON, as the Kafka record carries it.
    record BLOB NOT NULL
);

-- Where routing resumes after a restart: everything before `next_seq` is done.
CREATE TABLE log_committed (
    partition INTEGER PRIMARY KEY,
    next_seq  INTEGER NOT NULL
);

-- The inbox, as in PostgreSQL (migrations/postgres).
CREATE TABLE inbox (
    recipient       TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    kind            TEXT,
    -- The publisher's JSON text, kept exactly.
    payload         TEXT    NOT NULL,
    published_at_ms INTEGER NOT NULL,
    expires_at_ms   INTEGER,
    stored_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (recipient, position)
);

CREATE UNIQUE INDEX inbox_recipient_id ON inbox (recipient, id);
CREATE INDEX inbox_expires_at ON inbox (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE INDEX inbox_stored_at ON inbox (stored_at_ms);
