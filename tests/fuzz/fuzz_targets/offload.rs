//! A hostile host or guest's virtio-net header and frame (the first 10 bytes and the rest):
//! the record it describes, the frame's longest segment, the checksum finished, and the
//! super-frame cut into segments, each of which must be a whole frame no longer than a
//! segment may be. No panic, no buffer leaked, and never more segments than the payload
//! has bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::offload::{self, Segments, VIRTIO_HDR};
use nfv_dataplane::packet::Gso;
use nfv_dataplane::{Packet, Pool};

const POOL: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((hdr, frame)) = data.split_first_chunk::<VIRTIO_HDR>() else {
        return;
    };
    let Ok(record) = offload::from_virtio(hdr, usize::from(hdr[0] >> 7) * 4) else {
        return;
    };
    let Some(mut pkt) = Packet::from_bytes(frame) else {
        return;
    };
    pkt.set_offload(record);
    let wire = pkt.wire_len();
    assert!(wire <= pkt.len());
    let mut pool = Pool::new(POOL);
    match record {
        Some(o) if o.gso != Gso::None => {
            if let Ok(mut cut) = Segments::of(&pkt) {
                let mut n = 0usize;
                while let Some(seg) = cut.next(&pkt, &mut pool) {
                    n += 1;
                    assert!(n <= frame.len() + 1, "more segments than bytes");
                    if let Ok(seg) = seg {
                        assert!(seg.offload().is_none());
                        assert!(seg.len() <= wire, "{} > {wire}", seg.len());
                        pool.free(seg);
                    }
                }
            }
        }
        _ => {
            let _ = offload::finish(&mut pkt);
        }
    }
    // The header nfv would hand on says what the record says.
    let again = offload::from_virtio(&offload::to_virtio(pkt.offload()), 0);
    assert_eq!(again.ok().flatten(), pkt.offload());
    assert_eq!(pool.available(), POOL, "a buffer leaked");
});
