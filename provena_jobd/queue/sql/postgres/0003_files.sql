-- Generated reports behind signed links: any node serves a link another node made.
CREATE TABLE files (
    name    text PRIMARY KEY,
    data    bytea NOT NULL,
    created double precision NOT NULL
);
