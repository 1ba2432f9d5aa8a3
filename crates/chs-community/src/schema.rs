//! This crate's tables in the store's SQLite file, with versioned migrations.
//!
//! The versions are recorded by [`chs_store::migrate`] in the store's `chs_schema` table under the
//! component name [`COMPONENT`]; entry `i` of [`MIGRATIONS`] upgrades from version `i` to `i + 1`.
//! Never edit a released entry: append a new one.

/// The component name in `chs_schema`.
pub(crate) const COMPONENT: &str = "community";

/// The migrations of the community tables.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE chs_communities (
        community_id TEXT PRIMARY KEY NOT NULL,          -- 0x + 66 lowercase hex (compressed key)
        name TEXT NOT NULL DEFAULT '',
        private_key BLOB CHECK (private_key IS NULL OR length(private_key) = 32), -- control node iff set
        pubsub_topic TEXT NOT NULL,
        joined INTEGER NOT NULL DEFAULT 1,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE chs_community_chats (
        community_id TEXT NOT NULL REFERENCES chs_communities (community_id) ON DELETE CASCADE,
        chat_id TEXT NOT NULL,                           -- community id + channel uuid
        PRIMARY KEY (community_id, chat_id)
    );
    -- status-go's communities_archive_info, without `ON CONFLICT REPLACE` (spec section 15 item 11):
    -- every write touches only its own column.
    CREATE TABLE chs_archive_info (
        community_id TEXT PRIMARY KEY NOT NULL,
        magnetlink_clock INTEGER NOT NULL DEFAULT 0,     -- ms
        last_magnetlink_uri TEXT NOT NULL DEFAULT '',    -- last fully fetched magnet URI
        last_message_archive_end_date INTEGER NOT NULL DEFAULT 0 -- seconds
    );
    -- status-go's community_message_archive_hashes, keyed per community (spec section 15 item 25).
    CREATE TABLE chs_archive_ids (
        community_id TEXT NOT NULL,
        archive_id TEXT NOT NULL,                        -- 0x + 64 lowercase hex
        from_secs INTEGER NOT NULL DEFAULT 0,
        to_secs INTEGER NOT NULL DEFAULT 0,
        imported INTEGER NOT NULL DEFAULT 0,
        import_failures INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        downloaded_at_ms INTEGER NOT NULL,
        imported_at_ms INTEGER,
        PRIMARY KEY (community_id, archive_id)
    );
    -- The unwrapped ApplicationMetadataMessage of every imported message, keyed for range
    -- replacement and time-ordered reading. `community_ref` is chs_communities.rowid.
    -- state: 0 = decode pending, 1 = decoded, 2 = undecodable (`error` says why).
    CREATE TABLE chs_history (
        community_ref INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,                      -- archived WakuMessage timestamp, seconds
        message_hash BLOB NOT NULL CHECK (length(message_hash) = 32),
        topic BLOB NOT NULL CHECK (length(topic) = 4),
        state INTEGER NOT NULL DEFAULT 0,
        amm_type INTEGER NOT NULL DEFAULT 0,
        signer TEXT NOT NULL DEFAULT '',                 -- 0x + uncompressed key hex
        clock INTEGER NOT NULL DEFAULT 0,                -- the application clock, ms (0 if none)
        sent_at_ms INTEGER NOT NULL DEFAULT 0,           -- ChatMessage timestamp, ms (0 if none)
        chat_id TEXT NOT NULL DEFAULT '',
        text TEXT,                                       -- CHAT_MESSAGE text
        error TEXT,
        PRIMARY KEY (community_ref, timestamp, message_hash)
    ) WITHOUT ROWID;
    -- The node's own chat identity (the 26/WAKU2 payload signer) and installation id.
    CREATE TABLE chs_node_identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        identity_key BLOB NOT NULL CHECK (length(identity_key) = 32),
        installation_id TEXT NOT NULL
    );",
    // Version 2: what an import refused (topics of another community), and the topics a community
    // learned from its own archives (first claim wins; configured channels always win).
    "ALTER TABLE chs_archive_ids ADD COLUMN refused_topics TEXT NOT NULL DEFAULT '';
    ALTER TABLE chs_archive_ids ADD COLUMN refused_messages INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE chs_community_topics (
        topic BLOB PRIMARY KEY NOT NULL CHECK (length(topic) = 4),
        community_id TEXT NOT NULL
    );",
    // Version 3: the member's pending magnetlink, moved here from chs-node (which created the
    // same table as its component `node`, version 1: kept as it is in existing files).
    "CREATE TABLE IF NOT EXISTS chs_node_pending (
        community_id TEXT PRIMARY KEY NOT NULL,
        magnet_uri TEXT NOT NULL,
        clock INTEGER NOT NULL,
        accepted_at_ms INTEGER NOT NULL
    );",
    // Version 4: a member's fetched link whose index it could not open (hash-ratchet wrapped in
    // an encrypted community): kept and seeded, recorded with the reason (issue 19 item 3).
    "CREATE TABLE chs_unopened_links (
        community_id TEXT PRIMARY KEY NOT NULL,
        link TEXT NOT NULL,
        reason TEXT NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        recorded_at_ms INTEGER NOT NULL
    );",
    // Version 5 (issue 19): what the community's signed description says, its public shard info,
    // and the protected-topic key (32-byte private key: signs `meta`; 33-byte compressed public
    // key: validates only).
    "CREATE TABLE chs_community_description (
        community_id TEXT PRIMARY KEY NOT NULL,
        clock INTEGER NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        about TEXT NOT NULL DEFAULT '',
        encrypted INTEGER NOT NULL DEFAULT 0,
        channels_hidden INTEGER NOT NULL DEFAULT 0,
        access INTEGER NOT NULL DEFAULT 0,
        token_permissions INTEGER NOT NULL DEFAULT 0,
        archive_link_clock INTEGER NOT NULL DEFAULT 0,   -- field 9, ms
        channels TEXT NOT NULL DEFAULT '[]',             -- JSON [{uuid, chat_id, name, token_gated}]
        received_at_ms INTEGER NOT NULL
    );
    CREATE TABLE chs_community_shard (
        community_id TEXT PRIMARY KEY NOT NULL,
        clock INTEGER NOT NULL,
        cluster INTEGER,                                 -- NULL = the default shard
        shard_index INTEGER,
        received_at_ms INTEGER NOT NULL
    );
    ALTER TABLE chs_communities ADD COLUMN topic_key BLOB
        CHECK (topic_key IS NULL OR length(topic_key) IN (32, 33));",
    // Version 6: the control node of an owner-token community, as the operator configured it
    // (compressed public key; NULL: the community key).
    "ALTER TABLE chs_communities ADD COLUMN control_node BLOB
        CHECK (control_node IS NULL OR length(control_node) = 33);",
    // Version 7 (issue 19 item 3): the community hash-ratchet keys this node holds (status-go's
    // hash_ratchet_encryption; the group id is the community id) and, per key, the last sequence
    // number this node wrapped an archive or index with (its hash_ratchet_encryption_cache
    // seq_no), reserved before each wrap so that none is ever used twice.
    "CREATE TABLE chs_ratchet_keys (
        community_id TEXT NOT NULL,
        key_id BLOB NOT NULL,                            -- keccak256(group id || LE64(timestamp) || key)
        key_timestamp INTEGER NOT NULL,                  -- status-go's key timestamp, Unix ms
        key BLOB NOT NULL CHECK (length(key) = 32),
        last_seq_no INTEGER NOT NULL DEFAULT 0,
        added_at_ms INTEGER NOT NULL,
        PRIMARY KEY (community_id, key_id)
    );",
];
