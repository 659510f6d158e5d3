use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use testenv::TestDatabase;

static MIGRATOR: Migrator = sqlx::migrate!("tests/servers/migrations");

#[tokio::test]
async fn a_migration_applies_once_and_a_query_reads_back_what_was_written() {
    let db = TestDatabase::create("smoke").await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("a pool on the test database");

    MIGRATOR.run(&pool).await.expect("the migration applies");
    MIGRATOR
        .run(&pool)
        .await
        .expect("applying it again changes nothing");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("sqlx's migration table");
    assert_eq!(applied, 1);

    sqlx::query("INSERT INTO smoke_notes (body) VALUES ($1)")
        .bind("hello")
        .execute(&pool)
        .await
        .expect("insert");
    let body: String = sqlx::query_scalar("SELECT body FROM smoke_notes WHERE id = 1")
        .fetch_one(&pool)
        .await
        .expect("select");
    assert_eq!(body, "hello");

    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&pool)
        .await
        .expect("version()");
    assert!(version.starts_with("PostgreSQL"), "{version}");

    pool.close().await;
    db.drop_database().await;
}
