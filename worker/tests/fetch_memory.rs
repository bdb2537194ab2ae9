//! A model file is streamed to the cache, never held whole in memory: the
//! peak heap growth while downloading a 64 MiB weight file stays far below
//! its size. (Alone in this test binary so no other test allocates meanwhile.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn a_large_weight_file_is_streamed_to_disk() {
    const SIZE: usize = 64 << 20;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("config.json"), b"{\"model_type\":\"bert\"}").unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(src.path().join("model.safetensors")).unwrap();
        let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..SIZE >> 20 {
            f.write_all(&block).unwrap();
        }
    }
    let url = format!("file://{}", src.path().display());
    let location = headscan_proto::store::Location::parse(&url).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let dir = rt
        .block_on(headscan_worker::fetch::download(&location, cache.path()))
        .unwrap();
    let grown = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(
        std::fs::metadata(dir.join("model.safetensors")).unwrap().len(),
        SIZE as u64
    );
    assert!(
        grown < SIZE / 8,
        "peak heap grew by {grown} bytes while fetching {SIZE} bytes"
    );
}
