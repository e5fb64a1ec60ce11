//! The library's index: a cache of the manifests in the store (lessons, their members' hashes,
//! and what each teaches) that answers searches. SQLite with FTS5 on one machine; PostgreSQL
//! with its own full-text search for an institution. The two speak the same queries here, so
//! the library above them is written once.
//!
//! Ranks: lower is better in both (SQLite's bm25 is negative; PostgreSQL's `ts_rank` is
//! negated), weighted by what matched: titles first, then anatomy and chapters, then authors,
//! then descriptions and notes.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{params, TransactionBehavior};

use crate::{Entry, EntryKind, Hit, LessonRow, LibraryError};

/// One stored member of a lesson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's name in the bundle.
    pub name: String,
    /// Its BLAKE3 (the object's name).
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The index.
pub enum Db {
    /// `index.sqlite` in the library folder.
    Sqlite {
        /// The file (for messages).
        path: PathBuf,
        /// The connection.
        conn: rusqlite::Connection,
    },
    /// A PostgreSQL database.
    Postgres {
        /// The URL without its password (for messages).
        url: String,
        /// The connection.
        client: Box<postgres::Client>,
    },
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lessons (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    duration_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    lesson_id TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (lesson_id, name)
);
CREATE INDEX IF NOT EXISTS members_hash ON members (hash);
CREATE VIRTUAL TABLE IF NOT EXISTS entries USING fts5(
    lesson_id UNINDEXED, kind UNINDEXED, time_s UNINDEXED, chapter UNINDEXED,
    title_text, anatomy_text, chapter_text, author_text, other_text,
    tokenize = 'porter unicode61'
);
PRAGMA user_version = 2;
";

/// The SQLite index's layout version (`PRAGMA user_version`). An index of another version is
/// dropped and rebuilt from the store: it is only a cache.
const SQLITE_VERSION: i64 = 2;

/// The text columns of the SQLite entries table, one per kind of entry, so that bm25's column
/// weights apply the kind weight ([`KIND_WEIGHT`]'s values, in this order) without reading any
/// stored column of the rows it ranks: reading those for every match was most of a search.
const SQLITE_TEXT_COLUMNS: [(&str, f64); 5] = [
    ("title_text", 4.0),
    ("anatomy_text", 3.0),
    ("chapter_text", 3.0),
    ("author_text", 2.0),
    ("other_text", 1.0),
];

/// Which of [`SQLITE_TEXT_COLUMNS`] holds an entry of `kind`.
fn sqlite_column(kind: EntryKind) -> usize {
    match kind {
        EntryKind::Title => 0,
        EntryKind::Anatomy => 1,
        EntryKind::Chapter => 2,
        EntryKind::Author => 3,
        EntryKind::Description | EntryKind::Note => 4,
    }
}

/// An entry's text in the SQLite table: the one non-empty text column.
const SQLITE_TEXT: &str = "title_text || anatomy_text || chapter_text || author_text || other_text";

const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lessons (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    lesson_id TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (lesson_id, name)
);
CREATE INDEX IF NOT EXISTS members_hash ON members (hash);
CREATE TABLE IF NOT EXISTS entries (
    lesson_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    time_s DOUBLE PRECISION NOT NULL,
    chapter TEXT NOT NULL,
    text TEXT NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX IF NOT EXISTS entries_tsv ON entries USING GIN (tsv);
CREATE INDEX IF NOT EXISTS entries_lesson ON entries (lesson_id);
";

/// The advisory lock every PostgreSQL writer takes (adds and removes serialise on it, as
/// folder libraries do on their lock file).
const PG_WRITE_LOCK: i64 = 0x7477_6c69_6272; // "twlibr"

/// The kind weight, written once for both dialects.
const KIND_WEIGHT: &str = "CASE e.kind WHEN 'title' THEN 4.0 WHEN 'anatomy' THEN 3.0 \
     WHEN 'chapter' THEN 3.0 WHEN 'author' THEN 2.0 ELSE 1.0 END";

const LESSON_COLUMNS: &str = "l.id, l.title, l.author, l.description, l.case_ref, l.duration_s";

/// The search's terms: words of letters and digits, each quoted (so no query syntax leaks).
fn terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Db {
    /// Opens (creating when needed) the SQLite index at `path`; says whether it was new.
    pub fn open_sqlite(path: PathBuf) -> Result<(Self, bool), LibraryError> {
        let was_new = !path.exists();
        let sql = |source| LibraryError::Sql {
            path: path.display().to_string(),
            reason: format!("{source}"),
        };
        let conn = rusqlite::Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        // An index another version wrote is dropped (in one immediate transaction, so two
        // processes opening it at once do not both rebuild the schema) and rebuilt by the caller.
        let mut stale = false;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version != SQLITE_VERSION {
            stale = !was_new;
            conn.execute_batch(
                "DROP TABLE IF EXISTS lessons; DROP TABLE IF EXISTS members; DROP TABLE IF EXISTS entries;",
            )
            .map_err(sql)?;
            conn.execute_batch(SQLITE_SCHEMA).map_err(sql)?;
        }
        conn.execute_batch("COMMIT").map_err(sql)?;
        Ok((Self::Sqlite { path, conn }, was_new || stale))
    }

    /// Connects to PostgreSQL at `url` and creates the tables when needed; says whether the
    /// index was empty.
    pub fn open_postgres(url: &str) -> Result<(Self, bool), LibraryError> {
        let shown = redact(url);
        let sql = |e: postgres::Error| LibraryError::Sql {
            path: shown.clone(),
            reason: pg_reason(&e),
        };
        let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(sql)?;
        // The schema is made under a transaction-scoped lock, released at COMMIT: with a session
        // lock released before the commit, a second process opening a new library at the same
        // moment did not yet see the first one's tables and failed creating them again.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK}); {POSTGRES_SCHEMA} COMMIT;"
            ))
            .map_err(sql)?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM lessons", &[])
            .map_err(sql)?
            .get(0);
        Ok((
            Self::Postgres {
                url: shown,
                client: Box::new(client),
            },
            count == 0,
        ))
    }

    /// What the index is, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => path.display().to_string(),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    fn sql_err(&self, reason: String) -> LibraryError {
        LibraryError::Sql {
            path: self.describe(),
            reason,
        }
    }

    fn sqlite_err(&self, e: &rusqlite::Error) -> LibraryError {
        self.sql_err(e.to_string())
    }

    fn pg_err(&self, e: &postgres::Error) -> LibraryError {
        self.sql_err(pg_reason(e))
    }

    /// Takes the PostgreSQL write lock (folder libraries lock a file instead).
    pub fn lock_writes(&mut self) -> Result<(), LibraryError> {
        if let Self::Postgres { client, .. } = self {
            let r = client.execute("SELECT pg_advisory_lock($1)", &[&PG_WRITE_LOCK]);
            r.map_err(|e| self.pg_err(&e))?;
        }
        Ok(())
    }

    /// Releases the PostgreSQL write lock.
    pub fn unlock_writes(&mut self) -> Result<(), LibraryError> {
        if let Self::Postgres { client, .. } = self {
            let r = client.execute("SELECT pg_advisory_unlock($1)", &[&PG_WRITE_LOCK]);
            r.map_err(|e| self.pg_err(&e))?;
        }
        Ok(())
    }

    /// Puts a lesson, its members and its entries into the index in one transaction,
    /// replacing what it held for that id.
    pub fn insert(
        &mut self,
        row: &LessonRow,
        members: &[MemberRef],
        entries: &[Entry],
    ) -> Result<(), LibraryError> {
        match self {
            Self::Sqlite { conn, .. } => {
                let r = (|| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    sqlite_delete(&tx, &row.id)?;
                    tx.execute(
                        "INSERT INTO lessons (id, title, author, description, case_ref, duration_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![row.id, row.title, row.author, row.description, row.case_ref, row.duration_s],
                    )?;
                    {
                        let mut m = tx.prepare(
                            "INSERT INTO members (lesson_id, name, hash, size) VALUES (?1, ?2, ?3, ?4)",
                        )?;
                        for mr in members {
                            m.execute(params![row.id, mr.name, mr.hash, mr.size as i64])?;
                        }
                        let mut e = tx.prepare(
                            "INSERT INTO entries (lesson_id, kind, time_s, chapter, title_text, anatomy_text, chapter_text, author_text, other_text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        )?;
                        for en in entries {
                            let mut texts = [""; 5];
                            texts[sqlite_column(en.kind)] = en.text.as_str();
                            e.execute(params![
                                row.id,
                                en.kind.name(),
                                en.time_s,
                                en.chapter,
                                texts[0],
                                texts[1],
                                texts[2],
                                texts[3],
                                texts[4]
                            ])?;
                        }
                    }
                    tx.commit()
                })();
                r.map_err(|e| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                let r = (|| {
                    let mut tx = client.transaction()?;
                    pg_delete(&mut tx, &row.id)?;
                    tx.execute(
                        "INSERT INTO lessons (id, title, author, description, case_ref, duration_s) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&row.id, &row.title, &row.author, &row.description, &row.case_ref, &row.duration_s],
                    )?;
                    let m = tx.prepare(
                        "INSERT INTO members (lesson_id, name, hash, size) VALUES ($1, $2, $3, $4)",
                    )?;
                    for mr in members {
                        let size = i64::try_from(mr.size).unwrap_or(i64::MAX);
                        tx.execute(&m, &[&row.id, &mr.name, &mr.hash, &size])?;
                    }
                    // One multi-row statement per batch: a round trip per entry would make
                    // filling a large index slow.
                    for chunk in entries.chunks(500) {
                        let mut sql = String::from(
                            "INSERT INTO entries (lesson_id, kind, time_s, chapter, text) VALUES ",
                        );
                        let mut args: Vec<Box<dyn postgres::types::ToSql + Sync>> = Vec::new();
                        for (i, en) in chunk.iter().enumerate() {
                            let b = i * 5;
                            if i > 0 {
                                sql.push(',');
                            }
                            sql.push_str(&format!(
                                "(${}, ${}, ${}, ${}, ${})",
                                b + 1,
                                b + 2,
                                b + 3,
                                b + 4,
                                b + 5
                            ));
                            args.push(Box::new(row.id.clone()));
                            args.push(Box::new(en.kind.name().to_owned()));
                            args.push(Box::new(en.time_s));
                            args.push(Box::new(en.chapter.clone()));
                            args.push(Box::new(en.text.clone()));
                        }
                        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                            args.iter().map(AsRef::as_ref).collect();
                        tx.execute(sql.as_str(), &refs)?;
                    }
                    tx.commit()
                })();
                r.map_err(|e| self.pg_err(&e))
            }
        }
    }

    /// Removes a lesson's rows; returns the hashes of its members that no other lesson uses.
    pub fn delete(&mut self, id: &str) -> Result<Vec<String>, LibraryError> {
        let orphan_query = "SELECT DISTINCT m.hash FROM members m WHERE m.lesson_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM members o WHERE o.hash = m.hash AND o.lesson_id <> $1)";
        match self {
            Self::Sqlite { conn, .. } => {
                let r = (|| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let orphans = {
                        let mut q = tx.prepare(&orphan_query.replace("$1", "?1"))?;
                        let rows = q.query_map(params![id], |r| r.get::<_, String>(0))?;
                        rows.collect::<Result<Vec<_>, _>>()?
                    };
                    sqlite_delete(&tx, id)?;
                    tx.commit()?;
                    Ok(orphans)
                })();
                r.map_err(|e: rusqlite::Error| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                let r = (|| {
                    let mut tx = client.transaction()?;
                    let orphans = tx
                        .query(orphan_query, &[&id])?
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect();
                    pg_delete(&mut tx, id)?;
                    tx.commit()?;
                    Ok(orphans)
                })();
                r.map_err(|e: postgres::Error| self.pg_err(&e))
            }
        }
    }

    /// Empties the index (before a reindex).
    pub fn clear(&mut self) -> Result<(), LibraryError> {
        match self {
            Self::Sqlite { conn, .. } => {
                let r = conn.execute_batch(
                    "DELETE FROM lessons; DELETE FROM members; DELETE FROM entries;",
                );
                r.map_err(|e| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                let r = client.batch_execute("TRUNCATE lessons, members, entries");
                r.map_err(|e| self.pg_err(&e))
            }
        }
    }

    /// Every lesson, by title.
    pub fn lessons(&mut self) -> Result<Vec<LessonRow>, LibraryError> {
        let sql = format!("SELECT {LESSON_COLUMNS} FROM lessons l ORDER BY l.title, l.id");
        match self {
            Self::Sqlite { conn, .. } => {
                let r = (|| {
                    let mut q = conn.prepare(&sql)?;
                    let rows = q.query_map([], |r| sqlite_row(r, 0))?;
                    rows.collect::<Result<Vec<_>, _>>()
                })();
                r.map_err(|e| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                let r = client.query(sql.as_str(), &[]);
                r.map(|rows| rows.iter().map(|r| pg_row(r, 0)).collect())
                    .map_err(|e| self.pg_err(&e))
            }
        }
    }

    /// A lesson's entries, in time order.
    pub fn entries(&mut self, id: &str) -> Result<Vec<Entry>, LibraryError> {
        match self {
            Self::Sqlite { conn, .. } => {
                let r = (|| {
                    let mut q = conn.prepare(&format!(
                        "SELECT kind, time_s, chapter, {SQLITE_TEXT} FROM entries WHERE lesson_id = ?1 ORDER BY time_s, rowid"
                    ))?;
                    let rows = q.query_map(params![id], |r| {
                        Ok(Entry {
                            kind: EntryKind::from_name(&r.get::<_, String>(0)?),
                            time_s: r.get(1)?,
                            chapter: r.get(2)?,
                            text: r.get(3)?,
                        })
                    })?;
                    rows.collect::<Result<Vec<_>, _>>()
                })();
                r.map_err(|e| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                let r = client.query(
                    "SELECT kind, time_s, chapter, text FROM entries WHERE lesson_id = $1 ORDER BY time_s, ctid",
                    &[&id],
                );
                r.map(|rows| {
                    rows.iter()
                        .map(|r| Entry {
                            kind: EntryKind::from_name(r.get(0)),
                            time_s: r.get(1),
                            chapter: r.get(2),
                            text: r.get(3),
                        })
                        .collect()
                })
                .map_err(|e| self.pg_err(&e))
            }
        }
    }

    /// The best-matching entry of each of the (at most `limit`) best lessons matching every
    /// word of `query`, best first.
    pub fn search(&mut self, query: &str, limit: usize) -> Result<Vec<Hit>, LibraryError> {
        let words = terms(query);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        match self {
            Self::Sqlite { conn, .. } => {
                let fts: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                let r = sqlite_search(conn, &fts.join(" "), limit);
                r.map_err(|e| self.sqlite_err(&e))
            }
            Self::Postgres { client, .. } => {
                // The best entry per lesson (DISTINCT ON), then the best lessons.
                let sql = format!(
                    "SELECT * FROM (
                         SELECT DISTINCT ON (e.lesson_id) {LESSON_COLUMNS}, e.kind, e.time_s,
                                e.chapter, e.text, (-ts_rank(e.tsv, q) * {KIND_WEIGHT})::float8 AS r
                         FROM entries e JOIN lessons l ON l.id = e.lesson_id,
                              plainto_tsquery('english', $1) q
                         WHERE e.tsv @@ q ORDER BY e.lesson_id, r, e.time_s) best
                     ORDER BY r, time_s, id LIMIT $2"
                );
                let n = i64::try_from(limit).unwrap_or(i64::MAX);
                let r = client.query(sql.as_str(), &[&words.join(" "), &n]);
                r.map(|rows| {
                    rows.iter()
                        .map(|r| Hit {
                            lesson: pg_row(r, 0),
                            kind: EntryKind::from_name(r.get(6)),
                            time_s: r.get(7),
                            chapter: r.get(8),
                            text: r.get(9),
                            rank: r.get(10),
                        })
                        .collect()
                })
                .map_err(|e| self.pg_err(&e))
            }
        }
    }
}

/// SQLite search in two steps: bm25 over the matches alone (ranks and row ids, no stored
/// column read), then the rows of the best few, until `limit` lessons are found. When the
/// first page holds too few lessons (one lesson's entries filling it), the next is twice as
/// long.
fn sqlite_search(
    conn: &rusqlite::Connection,
    fts: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Hit>> {
    let weights: Vec<String> = SQLITE_TEXT_COLUMNS
        .iter()
        .map(|(_, w)| format!("{w:.1}"))
        .collect();
    let rank_sql = format!(
        "SELECT rowid, bm25(entries, 0, 0, 0, 0, {}) AS r FROM entries WHERE entries MATCH ?1 ORDER BY r, rowid LIMIT ?2",
        weights.join(", ")
    );
    let row_sql = format!(
        "SELECT {LESSON_COLUMNS}, e.kind, e.time_s, e.chapter, {}
         FROM entries e JOIN lessons l ON l.id = e.lesson_id WHERE e.rowid = ?1",
        SQLITE_TEXT.replace("title_text", "e.title_text")
    );
    let mut page = (limit * 20).max(100);
    loop {
        let ranked: Vec<(i64, f64)> = {
            let mut q = conn.prepare_cached(&rank_sql)?;
            let rows = q.query_map(params![fts, i64::try_from(page).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut hits: Vec<Hit> = Vec::new();
        let mut row_q = conn.prepare_cached(&row_sql)?;
        for (rowid, rank) in &ranked {
            let mut rows = row_q.query(params![rowid])?;
            let Some(r) = rows.next()? else { continue };
            let lesson = sqlite_row(r, 0)?;
            if hits.iter().any(|h| h.lesson.id == lesson.id) {
                continue;
            }
            hits.push(Hit {
                lesson,
                kind: EntryKind::from_name(&r.get::<_, String>(6)?),
                time_s: r.get(7)?,
                chapter: r.get(8)?,
                text: r.get(9)?,
                rank: *rank,
            });
            if hits.len() >= limit {
                break;
            }
        }
        if hits.len() >= limit || ranked.len() < page {
            // Equal ranks (the same author on two lessons) in a fixed order, not in the order
            // the lessons happened to be indexed.
            hits.sort_by(|a, b| {
                a.rank
                    .total_cmp(&b.rank)
                    .then(a.time_s.total_cmp(&b.time_s))
                    .then_with(|| a.lesson.id.cmp(&b.lesson.id))
            });
            return Ok(hits);
        }
        page *= 2;
    }
}

fn sqlite_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<LessonRow> {
    Ok(LessonRow {
        id: r.get(at)?,
        title: r.get(at + 1)?,
        author: r.get(at + 2)?,
        description: r.get(at + 3)?,
        case_ref: r.get(at + 4)?,
        duration_s: r.get(at + 5)?,
    })
}

fn pg_row(r: &postgres::Row, at: usize) -> LessonRow {
    LessonRow {
        id: r.get(at),
        title: r.get(at + 1),
        author: r.get(at + 2),
        description: r.get(at + 3),
        case_ref: r.get(at + 4),
        duration_s: r.get(at + 5),
    }
}

/// Removes a lesson's rows. Its entries are found by a scan (FTS5 indexes no `lesson_id`), so
/// the scan runs only when the lesson was there: adding a new lesson stays independent of the
/// index's size (filling 10,000 lessons took 218 s with the scan on every add).
fn sqlite_delete(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    if tx.execute("DELETE FROM lessons WHERE id = ?1", params![id])? > 0 {
        tx.execute("DELETE FROM members WHERE lesson_id = ?1", params![id])?;
        tx.execute("DELETE FROM entries WHERE lesson_id = ?1", params![id])?;
    }
    Ok(())
}

fn pg_delete(tx: &mut postgres::Transaction<'_>, id: &str) -> Result<(), postgres::Error> {
    tx.execute("DELETE FROM lessons WHERE id = $1", &[&id])?;
    tx.execute("DELETE FROM members WHERE lesson_id = $1", &[&id])?;
    tx.execute("DELETE FROM entries WHERE lesson_id = $1", &[&id])?;
    Ok(())
}

/// A PostgreSQL error with the server's own message when there is one.
fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// `url` without its password, for messages.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    let user = auth.split(':').next().unwrap_or("");
    format!("{scheme}://{user}@{host}")
}
