use super::*;

fn logger() -> &'static Logger {
    Box::leak(Box::new(Logger::new()))
}

fn waker() -> (mio::Poll, Arc<Waker>) {
    let poll = mio::Poll::new().unwrap();
    let w = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
    (poll, w)
}

fn line(l: &Logger, kind: u32, text: &str) {
    l.log(kind, |line| line.text(text));
}

fn taken(h: &WatchHandle) -> String {
    let mut out = Vec::new();
    h.take(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn kinds_as_memcached_names_them() {
    let k = |s: &str| parse_kinds(s.split_whitespace().map(str::as_bytes));
    assert_eq!(k(""), Some(kind::FETCHERS));
    assert_eq!(
        k("mutations evictions"),
        Some(kind::MUTATIONS | kind::EVICTIONS)
    );
    assert_eq!(
        k("connevents sysevents rawcmds").map(|f| f & kind::CONNEVENTS),
        Some(kind::CONNEVENTS)
    );
    assert_eq!(k("fetchers bogus"), None);
}

#[test]
fn flags_follow_the_watchers() {
    let l = logger();
    let (_p, w) = waker();
    assert_eq!(l.flags.load(Ordering::Relaxed), 0);
    let a = l.add_watcher(kind::FETCHERS, 4096, w.clone(), 1).unwrap();
    let b = l.add_watcher(kind::MUTATIONS, 4096, w.clone(), 2).unwrap();
    assert_eq!(
        l.flags.load(Ordering::Relaxed),
        kind::FETCHERS | kind::MUTATIONS
    );
    assert_eq!(l.stats().watchers, 2);
    let mut tokens = Vec::new();
    l.watchers_of(&w, &mut tokens);
    assert_eq!(tokens, [1, 2]);
    drop(a);
    assert_eq!(l.flags.load(Ordering::Relaxed), kind::MUTATIONS);
    drop(b);
    assert_eq!(l.flags.load(Ordering::Relaxed), 0);
    assert_eq!(l.stats().watchers, 0);
}

#[test]
fn at_most_twenty_watchers() {
    let l = logger();
    let (_p, w) = waker();
    let hs: Vec<_> = (0..WATCHER_LIMIT)
        .map(|t| l.add_watcher(kind::FETCHERS, 1024, w.clone(), t).unwrap())
        .collect();
    assert_eq!(
        l.add_watcher(kind::FETCHERS, 1024, w.clone(), 99).err(),
        Some(AddError::TooMany)
    );
    drop(hs);
    assert!(l.add_watcher(kind::FETCHERS, 1024, w, 99).is_ok());
}

#[test]
fn a_watcher_sees_only_its_kinds_and_starts_with_ok() {
    let l = logger();
    let (_p, w) = waker();
    let h = l.add_watcher(kind::MUTATIONS, 4096, w, 0).unwrap();
    line(l, kind::FETCHERS, "type=item_get");
    line(l, kind::MUTATIONS, "type=item_store");
    let text = taken(&h);
    assert!(text.starts_with("OK\r\nts="), "{text}");
    assert!(text.ends_with(" type=item_store\n"), "{text}");
    assert_eq!(text.lines().count(), 2);
    assert_eq!(l.stats().watcher_sent, 1);
    assert_eq!(l.stats().worker_written, 2);
}

#[test]
fn a_full_buffer_skips_lines_and_says_so_later() {
    let l = logger();
    let (_p, w) = waker();
    let h = l.add_watcher(kind::FETCHERS, 1024, w, 0).unwrap();
    taken(&h);
    let body = "x".repeat(100);
    for _ in 0..20 {
        line(l, kind::FETCHERS, &body);
    }
    let s = l.stats();
    assert!(s.watcher_skipped > 0 && s.watcher_sent > 0);
    assert_eq!(s.watcher_skipped + s.watcher_sent, 20);
    // What the worker took still counts until its next take.
    let first = taken(&h);
    assert!(first.len() <= 1024);
    line(l, kind::FETCHERS, &body);
    assert_eq!(l.stats().watcher_skipped, s.watcher_skipped + 1);
    taken(&h);
    line(l, kind::FETCHERS, &body);
    let next = taken(&h);
    assert!(
        next.starts_with(&format!("skipped={}\nts=", s.watcher_skipped + 1)),
        "{next}"
    );
}

#[test]
fn lines_older_than_the_watcher_are_not_shown() {
    let l = logger();
    let (_p, w) = waker();
    l.gid.store(10, Ordering::Relaxed);
    let h = l.add_watcher(kind::FETCHERS, 4096, w, 0).unwrap();
    assert_eq!(h.watcher.min_gid, 11);
    line(l, kind::FETCHERS, "a");
    assert!(taken(&h).contains(" gid=12 a\n"));
}
