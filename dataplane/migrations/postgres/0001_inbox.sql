-- The inbox: notifications waiting for a recipient who was not connected,
-- or whose clients did not acknowledge them in time. A row leaves when a
-- client acknowledges it, when it expires, or after the inbox retention.
CREATE TABLE inbox (
    recipient      text   NOT NULL,
    -- The per-recipient position the notification was delivered with:
    -- rows are sent to clients in this order.
    position       bigint NOT NULL,
    id             text   NOT NULL,
    kind           text,
    -- `json`, not `jsonb`: the publisher's text is kept exactly.
    payload        json   NOT NULL,
    published_at_ms bigint NOT NULL,
    expires_at_ms  bigint,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient, position)
);

-- A replayed notification (the director restarted before committing its
-- offset) is the same id: it is stored once.
CREATE UNIQUE INDEX inbox_recipient_id ON inbox (recipient, id);

CREATE INDEX inbox_expires_at ON inbox (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE INDEX inbox_stored_at ON inbox (stored_at);
