use super::*;

fn entry(pid: i64, first: i64, last: i64) -> AbortedEntry {
    AbortedEntry {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: last + 1,
    }
}

fn pids(index: &AbortedIndex, from: i64, to: i64) -> Vec<i64> {
    index
        .overlapping(from, to)
        .iter()
        .map(|t| t.producer_id)
        .collect()
}

fn file_of(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.txnindex"))
}

#[test]
fn aborted_index_entries_go_to_their_segment_file_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let bases = [0, 100];
    let mut index = AbortedIndex::load(dir.path(), &bases, 200);
    assert!(index.is_empty());
    for (base, e) in [(0, entry(7, 10, 20)), (100, entry(8, 90, 120))] {
        let (path, bytes) = index.push(base, e);
        append_to_file(&path, &bytes).unwrap();
    }
    assert_eq!(
        std::fs::read(file_of(dir.path(), 0)).unwrap().len(),
        ENTRY_LEN
    );
    assert_eq!(
        std::fs::read(file_of(dir.path(), 100)).unwrap().len(),
        ENTRY_LEN
    );
    // A torn write leaves a partial entry: ignored.
    append_to_file(&file_of(dir.path(), 100), &[0, 0, 1]).unwrap();

    let mut reloaded = AbortedIndex::load(dir.path(), &bases, 200);
    assert_eq!(reloaded.len(), 2);
    assert!(!reloaded.needs_persist());
    assert!(!reloaded.recover(&bases, entry(7, 10, 20)), "already held");
    assert!(reloaded.recover(&bases, entry(9, 130, 150)));
    assert!(reloaded.needs_persist());
    assert_eq!(reloaded.persist_recovered().unwrap(), 1);
    // Rewritten whole: the torn bytes are gone, the recovered entry is in.
    let bytes = std::fs::read(file_of(dir.path(), 100)).unwrap();
    assert_eq!(bytes.len(), 2 * ENTRY_LEN);
    assert_eq!(AbortedIndex::load(dir.path(), &bases, 200).len(), 3);
}

#[test]
fn aborted_index_overlap_rules_across_segments() {
    let mut index = AbortedIndex::default();
    index.push(0, entry(1, 10, 20));
    index.push(0, entry(2, 25, 30));
    index.push(50, entry(3, 28, 60));
    assert_eq!(pids(&index, 0, 10), Vec::<i64>::new());
    assert_eq!(pids(&index, 0, 11), vec![1]);
    assert_eq!(pids(&index, 15, 26), vec![1, 2]);
    assert_eq!(pids(&index, 21, 100), vec![2, 3]);
    // From inside segment 50: a transaction that began in segment 0 but
    // whose marker is in segment 50 is still reported.
    assert_eq!(pids(&index, 55, 100), vec![3]);
    assert_eq!(pids(&index, 61, 100), Vec::<i64>::new());
}

#[test]
fn aborted_index_prune_drops_removed_segments() {
    let mut index = AbortedIndex::default();
    index.push(0, entry(1, 10, 20));
    index.push(50, entry(2, 55, 60));
    index.prune_below(50);
    assert_eq!(index.len(), 1);
    assert_eq!(pids(&index, 0, 100), vec![2]);
}

#[test]
fn aborted_index_load_drops_entries_past_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = AbortedIndex::load(dir.path(), &[0], 100);
    for e in [entry(1, 10, 20), entry(2, 30, 40)] {
        let (path, bytes) = index.push(0, e);
        append_to_file(&path, &bytes).unwrap();
    }
    // Recovery cut the log at 35: the second marker is gone.
    let mut cut = AbortedIndex::load(dir.path(), &[0], 35);
    assert_eq!(pids(&cut, 0, 100), vec![1]);
    assert!(cut.needs_persist());
    cut.persist_recovered().unwrap();
    let bytes = std::fs::read(file_of(dir.path(), 0)).unwrap();
    assert_eq!(bytes.len(), ENTRY_LEN);
}

#[test]
fn aborted_index_moves_legacy_partition_file_to_segments() {
    let dir = tempfile::tempdir().unwrap();
    let legacy: Vec<u8> = [entry(1, 5, 8), entry(2, 10, 20), entry(3, 90, 120)]
        .iter()
        .flat_map(|e| e.encode())
        .collect();
    std::fs::write(dir.path().join(LEGACY_FILE_NAME), legacy).unwrap();
    // Retention already removed the segment below 10.
    let bases = [10, 100];
    let mut index = AbortedIndex::load(dir.path(), &bases, 200);
    assert_eq!(pids(&index, 0, 200), vec![2, 3]);
    assert_eq!(index.persist_recovered().unwrap(), 2);
    assert!(!dir.path().join(LEGACY_FILE_NAME).exists());
    assert_eq!(
        std::fs::read(file_of(dir.path(), 10)).unwrap().len(),
        ENTRY_LEN
    );
    assert_eq!(
        std::fs::read(file_of(dir.path(), 100)).unwrap().len(),
        ENTRY_LEN
    );
    let reloaded = AbortedIndex::load(dir.path(), &bases, 200);
    assert!(!reloaded.needs_persist());
    assert_eq!(pids(&reloaded, 0, 200), vec![2, 3]);
}
