"""Versioned schema migrations for the DuckDB store.

Each migration runs once, in order, inside a transaction; ``schema_version`` records the
last one applied. Never edit a released migration: append a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            created_ns BIGINT NOT NULL
        );
        CREATE TABLE ingest_keys (
            key VARCHAR PRIMARY KEY,
            project_id INTEGER NOT NULL,
            created_ns BIGINT NOT NULL,
            revoked BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE api_tokens (
            token_sha256 VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            created_ns BIGINT NOT NULL
        );
        -- One row per span. Well-known attributes are lifted into columns; the rest
        -- are JSON text (DuckDB compresses repeated keys well).
        CREATE TABLE spans (
            project_id INTEGER NOT NULL,
            start_ns BIGINT NOT NULL,
            trace_id BLOB NOT NULL,
            span_id UBIGINT NOT NULL,
            parent_id UBIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            release VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            kind UTINYINT NOT NULL,
            duration_ns BIGINT NOT NULL,
            status UTINYINT NOT NULL,
            status_message VARCHAR,
            http_method VARCHAR,
            http_route VARCHAR,
            http_status USMALLINT,
            db_system VARCHAR,
            db_statement VARCHAR,
            attributes VARCHAR,
            resource VARCHAR,
            events VARCHAR,
            links VARCHAR,
            scope VARCHAR
        );
        CREATE INDEX spans_trace_id ON spans (trace_id);
        -- Per-minute rollups of entry spans (server/consumer spans and roots), one row
        -- per latency bucket; several rows may exist for the same key until compaction
        -- merges them, so readers always SUM.
        CREATE TABLE rollup_1m (
            project_id INTEGER NOT NULL,
            minute_s BIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            release VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            bucket USMALLINT NOT NULL,
            count UBIGINT NOT NULL,
            errors UBIGINT NOT NULL,
            sum_ns HUGEINT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- Sign-in. Passwords are argon2id hashes; session ids and one-time sign-in
        -- tokens are stored only as SHA-256 digests, so a copy of the database signs
        -- nobody in. No foreign keys: deleting a user deletes its rows explicitly.
        CREATE SEQUENCE user_ids START 1;
        CREATE TABLE users (
            id INTEGER PRIMARY KEY DEFAULT nextval('user_ids'),
            username VARCHAR NOT NULL UNIQUE,
            password_hash VARCHAR NOT NULL,
            is_admin BOOLEAN NOT NULL DEFAULT false,
            created_ns BIGINT NOT NULL
        );
        CREATE TABLE sessions (
            id_sha256 VARCHAR PRIMARY KEY,
            user_id INTEGER NOT NULL,
            created_ns BIGINT NOT NULL,
            expires_ns BIGINT NOT NULL
        );
        CREATE TABLE login_tokens (
            token_sha256 VARCHAR PRIMARY KEY,
            user_id INTEGER NOT NULL,
            created_ns BIGINT NOT NULL,
            expires_ns BIGINT NOT NULL
        );
        """,
    ),
    (
        3,
        """
        -- Database analytics and N+1 detection (see heron.server.analyze). The
        -- fingerprint of a span's statement is computed at ingest, where the statement
        -- is also stripped of literals; spans stored before this migration have none.
        ALTER TABLE spans ADD COLUMN db_fingerprint UBIGINT;
        -- The readable form of each fingerprint, from the first statement seen with it.
        CREATE TABLE sql_fingerprints (
            fingerprint UBIGINT PRIMARY KEY,
            db_system VARCHAR NOT NULL,
            display VARCHAR NOT NULL,
            first_seen_ns BIGINT NOT NULL
        );
        -- Per-minute statistics of database spans, one row per latency bucket, written
        -- by the analysis job (a span's endpoint is known only once its trace is in);
        -- the job replaces whole minutes, so there is one row per key.
        CREATE TABLE db_rollup_1m (
            project_id INTEGER NOT NULL,
            minute_s BIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            db_system VARCHAR NOT NULL,
            fingerprint UBIGINT NOT NULL,
            bucket USMALLINT NOT NULL,
            count UBIGINT NOT NULL,
            errors UBIGINT NOT NULL,
            sum_ns HUGEINT NOT NULL,
            max_ns BIGINT NOT NULL,
            rows_sum HUGEINT NOT NULL,
            rows_count UBIGINT NOT NULL
        );
        -- Repeat groups: at least N spans of one trace with the same parent and the same
        -- fingerprint (a SQL fingerprint, or an outgoing call's METHOD url-template).
        CREATE TABLE n_plus_one (
            project_id INTEGER NOT NULL,
            start_ns BIGINT NOT NULL,
            trace_id BLOB NOT NULL,
            parent_id UBIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            fingerprint UBIGINT NOT NULL,
            db_system VARCHAR,
            display VARCHAR NOT NULL,
            count UINTEGER NOT NULL,
            total_ns BIGINT NOT NULL,
            max_ns BIGINT NOT NULL,
            example_span_id UBIGINT NOT NULL
        );
        """,
    ),
    (
        4,
        """
        -- Logs (OTLP), one row per record. event_id links a record that also became an
        -- error event. Attributes and resource are JSON text, as for spans.
        CREATE TABLE logs (
            project_id INTEGER NOT NULL,
            time_ns BIGINT NOT NULL,
            observed_ns BIGINT NOT NULL,
            trace_id BLOB,
            span_id UBIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            release VARCHAR NOT NULL,
            severity_number UTINYINT NOT NULL,
            severity_text VARCHAR NOT NULL,
            logger VARCHAR NOT NULL,
            body VARCHAR NOT NULL,
            attributes VARCHAR,
            resource VARCHAR,
            event_id VARCHAR
        );
        CREATE INDEX logs_trace_id ON logs (trace_id);
        -- Error events: one row per occurrence, already scrubbed. JSON text columns hold
        -- the structured parts (see heron.server.model.ErrorEvent).
        CREATE TABLE error_events (
            project_id INTEGER NOT NULL,
            event_id VARCHAR NOT NULL,
            issue_id BIGINT NOT NULL,
            time_ns BIGINT NOT NULL,
            received_ns BIGINT NOT NULL,
            service VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            release VARCHAR NOT NULL,
            level VARCHAR NOT NULL,
            platform VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            exc_type VARCHAR,
            message VARCHAR NOT NULL,
            culprit VARCHAR NOT NULL,
            transaction VARCHAR,
            trace_id BLOB,
            span_id UBIGINT NOT NULL,
            user_key VARCHAR,
            handled BOOLEAN,
            logger VARCHAR,
            exceptions VARCHAR,
            breadcrumbs VARCHAR,
            request VARCHAR,
            user_data VARCHAR,
            tags VARCHAR,
            contexts VARCHAR,
            extra VARCHAR,
            sdk VARCHAR NOT NULL
        );
        CREATE INDEX error_events_issue ON error_events (issue_id);
        CREATE INDEX error_events_event_id ON error_events (event_id);
        -- Issues: events grouped by fingerprint, per project. Counters are kept by the
        -- writer; users/releases/environments are counted from error_events on read.
        -- resolved_release: the release it was resolved in ('' = no release known);
        -- an event from a later release (first seen after it) reopens it as a regression.
        CREATE SEQUENCE issue_ids START 1;
        CREATE TABLE issues (
            id BIGINT PRIMARY KEY DEFAULT nextval('issue_ids'),
            project_id INTEGER NOT NULL,
            fingerprint UBIGINT NOT NULL,
            title VARCHAR NOT NULL,
            exc_type VARCHAR,
            culprit VARCHAR NOT NULL,
            level VARCHAR NOT NULL,
            status VARCHAR NOT NULL DEFAULT 'open',
            first_seen_ns BIGINT NOT NULL,
            last_seen_ns BIGINT NOT NULL,
            event_count UBIGINT NOT NULL,
            first_release VARCHAR NOT NULL,
            last_release VARCHAR NOT NULL,
            resolved_release VARCHAR,
            status_changed_ns BIGINT,
            regressed_ns BIGINT,
            UNIQUE (project_id, fingerprint)
        );
        -- Releases in the order they were first seen, per project (for "later release").
        CREATE TABLE releases (
            project_id INTEGER NOT NULL,
            release VARCHAR NOT NULL,
            first_seen_ns BIGINT NOT NULL,
            PRIMARY KEY (project_id, release)
        );
        """,
    ),
    (
        5,
        """
        -- Metrics (see heron.server.model.metric). The series catalogue: one row per
        -- series (metric name + service + attributes), its labels as sorted JSON text,
        -- the first and last minute it had data (the writer moves last_seen_s forward).
        CREATE TABLE metric_series (
            project_id INTEGER NOT NULL,
            series BIGINT NOT NULL,
            name VARCHAR NOT NULL,
            service VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            unit VARCHAR NOT NULL,
            description VARCHAR NOT NULL,
            attributes VARCHAR NOT NULL,
            first_seen_s BIGINT NOT NULL,
            last_seen_s BIGINT NOT NULL,
            PRIMARY KEY (project_id, series)
        );
        -- Raw data points (interval values), kept retention_days.
        CREATE TABLE metric_points (
            project_id INTEGER NOT NULL,
            time_ns BIGINT NOT NULL,
            series BIGINT NOT NULL,
            value DOUBLE NOT NULL,
            count UBIGINT NOT NULL,
            min DOUBLE,
            max DOUBLE,
            bounds DOUBLE[],
            buckets UBIGINT[],
            quantiles DOUBLE[][]
        );
        CREATE TABLE metric_exemplars (
            project_id INTEGER NOT NULL,
            series BIGINT NOT NULL,
            time_ns BIGINT NOT NULL,
            value DOUBLE NOT NULL,
            trace_id BLOB NOT NULL,
            span_id UBIGINT NOT NULL
        );
        -- Per series and minute: count (observations or points), sum, min, max, the
        -- latest value and its time, merged histogram buckets. Several rows may exist
        -- for one key until compaction merges them: readers always merge.
        CREATE TABLE metric_rollup_1m (
            project_id INTEGER NOT NULL,
            series BIGINT NOT NULL,
            minute_s BIGINT NOT NULL,
            count UBIGINT NOT NULL,
            sum DOUBLE NOT NULL,
            min DOUBLE,
            max DOUBLE,
            last DOUBLE,
            last_ns BIGINT,
            bounds DOUBLE[],
            buckets UBIGINT[]
        );
        -- The same per 10 minutes and per hour (minute_s = the period's start), built
        -- by upkeep from the minute rollups of complete periods up to the tier's
        -- metric_tiers.built_to_s; a read whose step is whole periods takes the periods
        -- before that from the tier, the rest from the minutes.
        CREATE TABLE metric_rollup_10m (
            project_id INTEGER NOT NULL,
            series BIGINT NOT NULL,
            minute_s BIGINT NOT NULL,
            count UBIGINT NOT NULL,
            sum DOUBLE NOT NULL,
            min DOUBLE,
            max DOUBLE,
            last DOUBLE,
            last_ns BIGINT,
            bounds DOUBLE[],
            buckets UBIGINT[]
        );
        CREATE TABLE metric_rollup_1h (
            project_id INTEGER NOT NULL,
            series BIGINT NOT NULL,
            minute_s BIGINT NOT NULL,
            count UBIGINT NOT NULL,
            sum DOUBLE NOT NULL,
            min DOUBLE,
            max DOUBLE,
            last DOUBLE,
            last_ns BIGINT,
            bounds DOUBLE[],
            buckets UBIGINT[]
        );
        CREATE TABLE metric_tiers (res_s BIGINT NOT NULL, built_to_s BIGINT NOT NULL);
        """,
    ),
    (
        6,
        """
        -- Dashboards: title plus the JSON spec (panels, layout), validated by the server
        -- above the store (model/dashboard.py). version grows by one per update, so an
        -- edit based on an old version is refused instead of overwriting a newer one.
        CREATE SEQUENCE dashboard_ids START 1;
        CREATE TABLE dashboards (
            id BIGINT PRIMARY KEY DEFAULT nextval('dashboard_ids'),
            project_id INTEGER NOT NULL,
            title VARCHAR NOT NULL,
            spec VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            created_ns BIGINT NOT NULL,
            updated_ns BIGINT NOT NULL
        );
        """,
    ),
    (
        7,
        """
        -- Alerting (store/alerting.py). Rules, channels, silences and SLOs: one table of
        -- JSON specs validated above the store (model/alerting.py), names unique per
        -- project and kind; source: api, file or slo:<id> (who owns the object).
        CREATE SEQUENCE alert_config_ids START 1;
        CREATE TABLE alert_config (
            id BIGINT PRIMARY KEY DEFAULT nextval('alert_config_ids'),
            project_id INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            spec VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            created_ns BIGINT NOT NULL,
            updated_ns BIGINT NOT NULL,
            UNIQUE (project_id, kind, name)
        );
        -- What is pending, firing or recently resolved, per rule and label set.
        CREATE TABLE alert_instances (
            rule_id BIGINT NOT NULL,
            fingerprint VARCHAR NOT NULL,
            project_id INTEGER NOT NULL,
            labels VARCHAR NOT NULL,
            annotations VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            value DOUBLE,
            active_since_ns BIGINT NOT NULL,
            fired_ns BIGINT NOT NULL,
            resolved_ns BIGINT NOT NULL,
            last_eval_ns BIGINT NOT NULL,
            last_true_ns BIGINT NOT NULL,
            acked_by VARCHAR NOT NULL DEFAULT '',
            acked_ns BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, fingerprint)
        );
        CREATE SEQUENCE alert_history_ids START 1;
        CREATE TABLE alert_history (
            id BIGINT PRIMARY KEY DEFAULT nextval('alert_history_ids'),
            project_id INTEGER NOT NULL,
            rule_id BIGINT NOT NULL,
            fingerprint VARCHAR NOT NULL,
            labels VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            value DOUBLE,
            at_ns BIGINT NOT NULL
        );
        CREATE TABLE alert_rule_status (
            rule_id BIGINT PRIMARY KEY,
            project_id INTEGER NOT NULL,
            last_eval_ns BIGINT NOT NULL,
            duration_ms DOUBLE NOT NULL,
            error VARCHAR NOT NULL,
            instances INTEGER NOT NULL
        );
        -- Per channel and group: what was sent last and when (group_wait,
        -- group_interval and repeat_interval hold across restarts).
        CREATE TABLE notification_groups (
            project_id INTEGER NOT NULL,
            channel_id BIGINT NOT NULL,
            group_key VARCHAR NOT NULL,
            labels VARCHAR NOT NULL,
            first_ns BIGINT NOT NULL,
            last_sent_ns BIGINT NOT NULL,
            digest VARCHAR NOT NULL,
            escalated_ns BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (channel_id, group_key)
        );
        -- The outbox (pending) and the notification log (sent, failed).
        CREATE SEQUENCE notification_ids START 1;
        CREATE TABLE notifications (
            id BIGINT PRIMARY KEY DEFAULT nextval('notification_ids'),
            project_id INTEGER NOT NULL,
            channel_id BIGINT NOT NULL,
            group_key VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            payload VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_ns BIGINT NOT NULL,
            last_error VARCHAR NOT NULL,
            created_ns BIGINT NOT NULL,
            sent_ns BIGINT NOT NULL
        );
        CREATE INDEX notifications_due ON notifications (status, next_attempt_ns);
        -- Which process runs alerting (claim_alerting): one row, renewed while it runs.
        CREATE TABLE alert_lease (
            name VARCHAR PRIMARY KEY,
            holder VARCHAR NOT NULL,
            expires_ns BIGINT NOT NULL
        );
        """,
    ),
    (
        8,
        """
        -- Real-user monitoring (store/rum.py, model/rum.py): one row per thing a page
        -- reported (page view, vital, slow resource/interaction, long frame, error,
        -- traced fetch, slow render), columns in model.rum.RUM_FIELDS order after
        -- project_id. trace_id/span_id: the backend trace a view or fetch joined (NULL/0
        -- when none); attributes: the rest of the event as JSON text.
        CREATE TABLE rum_events (
            project_id INTEGER NOT NULL,
            time_ns BIGINT NOT NULL,
            kind VARCHAR NOT NULL,
            session_id VARCHAR NOT NULL,
            view_id VARCHAR NOT NULL,
            page VARCHAR NOT NULL,
            url VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            value DOUBLE NOT NULL,
            rating VARCHAR NOT NULL,
            target VARCHAR NOT NULL,
            browser VARCHAR NOT NULL,
            browser_version VARCHAR NOT NULL,
            os VARCHAR NOT NULL,
            device VARCHAR NOT NULL,
            app VARCHAR NOT NULL,
            release VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            user_id VARCHAR NOT NULL,
            trace_id BLOB,
            span_id UBIGINT NOT NULL,
            attributes VARCHAR
        );
        -- Per-minute web-vitals rollup (model.rum.RUM_ROLLUP_KEY + count): one row per
        -- value bucket; like rollup_1m, several rows may hold the same key until upkeep
        -- compacts them, so readers always SUM.
        CREATE TABLE rum_rollup_1m (
            project_id INTEGER NOT NULL,
            minute_s BIGINT NOT NULL,
            app VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            page VARCHAR NOT NULL,
            browser VARCHAR NOT NULL,
            device VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            rating VARCHAR NOT NULL,
            bucket USMALLINT NOT NULL,
            count UBIGINT NOT NULL
        );
        -- The hourly tier of rum_rollup_1m (store/duckdb/rum.py), rebuilt by upkeep for
        -- the hours before rum_tiers.built_to_s: per app and environment, page NULL
        -- (every page) and per page. A write of minutes before built_to_s moves it back
        -- in the same transaction, so reads take those hours from the minutes until
        -- upkeep rebuilds them.
        CREATE TABLE rum_rollup_1h (
            project_id INTEGER NOT NULL,
            hour_s BIGINT NOT NULL,
            app VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            page VARCHAR,
            metric VARCHAR NOT NULL,
            rating VARCHAR NOT NULL,
            bucket USMALLINT NOT NULL,
            count UBIGINT NOT NULL
        );
        CREATE TABLE rum_tiers (built_to_s BIGINT NOT NULL);
        INSERT INTO rum_tiers VALUES (0);
        """,
    ),
    (
        9,
        """
        -- Browser keys (RUM beacons, docs/rum.md "Beacon endpoint"): one per project,
        -- public (embedded in pages), so they only let a page post beacons.
        CREATE TABLE browser_keys (
            key VARCHAR PRIMARY KEY,
            project_id INTEGER NOT NULL UNIQUE,
            created_ns BIGINT NOT NULL
        );
        """,
    ),
    (
        10,
        """
        -- Load-test runs (store/loadtests.py, docs/loadtest.md): a named window with its
        -- labels and load as JSON text; the telemetry of the window is read on demand.
        CREATE SEQUENCE loadtest_ids START 1;
        CREATE TABLE loadtest_runs (
            id BIGINT PRIMARY KEY DEFAULT nextval('loadtest_ids'),
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            start_ns BIGINT NOT NULL,
            end_ns BIGINT,
            tool VARCHAR NOT NULL,
            command VARCHAR NOT NULL,
            service VARCHAR,
            environment VARCHAR,
            exit_code INTEGER,
            baseline VARCHAR,
            baseline_id BIGINT,
            verdict VARCHAR,
            labels_json VARCHAR NOT NULL,
            load_json VARCHAR NOT NULL,
            created_ns BIGINT NOT NULL,
            updated_ns BIGINT NOT NULL
        );
        CREATE INDEX loadtest_runs_name ON loadtest_runs (project_id, name, id);
        """,
    ),
]
