//! PostgreSQL writes of battle changes, migrations, offsets and the battle event outbox.
