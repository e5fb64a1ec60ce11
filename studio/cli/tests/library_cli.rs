//! `twinray library` as a user runs it: two processes adding bundles to one library at the same
//! time corrupt nothing; search prints the command that opens the hit, and that command renders
//! the lesson at the hit's time; a library URL without an object store is a clear error.

mod common;

use std::process::{Command, Stdio};

use common::{scratch, stderr, twinray};

fn bundle(lesson_title: &str, name: &str) -> std::path::PathBuf {
    let lesson = scratch(&format!("{name}.lesson"));
    let out = twinray(&[
        "demo",
        "--replace",
        "--out",
        lesson.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = scratch(&format!("{name}.twlesson"));
    let _ = std::fs::remove_file(&file);
    let out = twinray(&[
        "bundle",
        lesson.to_str().expect("utf-8"),
        "--title",
        lesson_title,
        "--no-thumbnail",
        "--out",
        file.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    file
}

#[test]
fn two_processes_add_at_once_and_search_opens_the_hit() {
    let a = bundle("Lumbar spine", "a");
    let b = bundle("Lumbar puncture landmarks", "b");
    let root = scratch("library");
    let _ = std::fs::remove_dir_all(&root);
    let root_s = root.to_str().expect("utf-8");

    // Two processes, each adding both bundles several times, at once.
    let spawn = |first: &std::path::Path, second: &std::path::Path| {
        let mut args = vec![
            "library".to_owned(),
            "--library".into(),
            root_s.into(),
            "add".into(),
        ];
        for _ in 0..3 {
            args.push(first.display().to_string());
            args.push(second.display().to_string());
        }
        Command::new(env!("CARGO_BIN_EXE_twinray"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("twinray library add")
    };
    let p1 = spawn(&a, &b);
    let p2 = spawn(&b, &a);
    for p in [p1, p2] {
        let out = p.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let list = twinray(&["library", "--library", root_s, "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let verify = twinray(&["library", "--library", root_s, "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Search names the open command; running it renders the lesson at that time.
    let search = twinray(&["library", "--library", root_s, "search", "spinous"]);
    let text = String::from_utf8_lossy(&search.stdout).into_owned();
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("twinray "))
        .unwrap_or_else(|| panic!("no command in: {text}"))
        .to_owned();
    let frame = scratch("hit.png");
    let mut args: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let at = args
        .iter()
        .position(|a| a == "frame.png")
        .expect("--out frame.png");
    args[at] = frame.display().to_string();
    args.insert(2, root_s.to_owned());
    args.insert(2, "--library".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = twinray(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Spinous processes"),
        "{}",
        stderr(&out)
    );
    assert!(frame.is_file());
}

#[test]
fn a_postgresql_url_without_an_object_store_is_a_clear_error() {
    let out = twinray(&[
        "library",
        "--library",
        "postgresql://teacher:secret@127.0.0.1:1/lessons",
        "list",
    ]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("objects=s3://"), "{e}");
    assert!(!e.contains("secret"), "the password is not printed: {e}");
}
