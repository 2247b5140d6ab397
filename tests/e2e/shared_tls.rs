//! TLS to the shared store's server, as libpq's `sslmode` says. The test
//! server of `scripts/postgres` speaks TLS with a certificate for
//! 127.0.0.1 and localhost signed by a throwaway CA, and turns the role
//! `tls_only` away unless it comes over TLS; without a server, or without
//! TLS on it (no openssl), the test says "skipped".

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

use super::shared_store::{fresh_database, sql};
use super::util::Run;

/// Runs statectl on the shared store `url`, with `env` set.
fn statectl(url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::cargo_bin("statectl")
        .unwrap()
        .arg("--store")
        .arg(url)
        .args(args)
        .env_remove("PGSSLROOTCERT")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run::from(out)
}

/// The same database for `user` on `host`, with these URL parameters.
fn url_for(url: &str, user: &str, host: &str, parameters: &str) -> String {
    let (_, rest) = url.split_once('@').unwrap();
    let (_, port_and_db) = rest.split_once(':').unwrap();
    format!("postgres://{user}@{host}:{port_and_db}{parameters}")
}

#[test]
fn sslmode_encrypts_checks_the_server_and_refuses_one_it_cannot_trust() {
    let Some(url) = fresh_database("tls") else {
        return;
    };
    let Ok(certificates) = std::env::var("STATECTL_TEST_POSTGRES_TLS") else {
        eprintln!(
            "tls: skipped: the test server speaks no TLS (scripts/postgres found no openssl)"
        );
        return;
    };
    sql(
        &url,
        "DO $$ BEGIN CREATE ROLE tls_only LOGIN SUPERUSER; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let ca = format!("{certificates}/ca.crt");
    let other_ca = format!("{certificates}/other-ca.crt");
    let tls_only = |host: &str, parameters: &str| url_for(&url, "tls_only", host, parameters);

    // Plain is turned away for tls_only; the default (prefer) and require
    // encrypt, so it gets in.
    let plain = statectl(&tls_only("127.0.0.1", "?sslmode=disable"), &["verify"], &[]);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(plain.stderr.contains("no encryption"), "{}", plain.stderr);
    let init = Command::cargo_bin("statectl")
        .unwrap()
        .args(["-q", "init", &tls_only("127.0.0.1", "?sslmode=require")])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for parameters in [
        "".to_string(),
        "?sslmode=require".to_string(),
        format!("?sslmode=verify-ca&sslrootcert={ca}"),
        format!("?sslmode=verify-full&sslrootcert={ca}"),
    ] {
        for host in ["127.0.0.1", "localhost"] {
            let run = statectl(&tls_only(host, &parameters), &["verify"], &[]);
            assert_eq!(run.code, 0, "{host}{parameters}: {}", run.stderr);
        }
    }
    let from_environment = statectl(
        &tls_only("127.0.0.1", "?sslmode=verify-full"),
        &["verify"],
        &[("PGSSLROOTCERT", &ca)],
    );
    assert_eq!(from_environment.code, 0, "{}", from_environment.stderr);

    // A server whose certificate does not chain to the CA given is refused
    // (also by require, once a root certificate is given), as is checking
    // with no CA at all: one line each, and nothing created.
    let fresh = fresh_database("tls_refused").unwrap();
    let fresh_tls = url_for(&fresh, "tls_only", "127.0.0.1", "");
    for (parameters, env, says) in [
        (
            format!("?sslmode=verify-full&sslrootcert={other_ca}"),
            vec![],
            "did not prove who it is",
        ),
        (
            "?sslmode=require".to_string(),
            vec![("PGSSLROOTCERT", other_ca.as_str())],
            "did not prove who it is",
        ),
        (
            "?sslmode=verify-ca".to_string(),
            vec![],
            "no root certificate was given",
        ),
        (
            format!("?sslmode=verify-ca&sslrootcert={certificates}/none.crt"),
            vec![],
            "cannot read the root certificate",
        ),
        ("?sslmode=always".to_string(), vec![], "is not a mode"),
    ] {
        let out = Command::cargo_bin("statectl")
            .unwrap()
            .args(["init", &format!("{fresh_tls}{parameters}")])
            .env_remove("PGSSLROOTCERT")
            .envs(env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{parameters}: {stderr}");
        assert!(stderr.contains(says), "{parameters}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert_eq!(
        super::shared_store::count(
            &fresh,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0,
        "a refused init created tables"
    );
}

/// A server that answers TLS's request with "no": `require` is refused in
/// one line naming what to change, `prefer` would speak plain. No
/// PostgreSQL needed: a listener that says "N" is all such a server does.
#[test]
fn require_against_a_server_without_tls_is_refused_in_one_line() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        if let Ok((mut connection, _)) = listener.accept() {
            let mut request = [0u8; 8];
            if connection.read_exact(&mut request).is_ok() {
                // 8 bytes: the length, then the SSLRequest code 80877103.
                assert_eq!(&request[4..], &80877103u32.to_be_bytes());
                let _ = connection.write_all(b"N");
                let _ = connection.read_to_end(&mut Vec::new());
            }
        }
    });
    let url = format!("postgres://someone@127.0.0.1:{port}/db?sslmode=require");
    let run = statectl(&url, &["verify"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("does not offer TLS"), "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    server.join().unwrap();
}
