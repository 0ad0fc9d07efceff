//! A sink that discards what it is sent and never receives anything.

use super::Port;
use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::packet::{Pool, MAX_FRAME};

/// Discards every frame it transmits (counting it as sent).
#[derive(Debug, Default)]
pub struct NullPort;

impl Port for NullPort {
    fn kind(&self) -> &'static str {
        "null"
    }

    fn rx_burst(&mut self, _pool: &mut Pool, _batch: &mut Batch, _counters: &PortCounters) {}

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        for pkt in batch.drain() {
            counters.tx(pkt.len());
            pool.free(pkt);
        }
    }

    fn max_frame(&self) -> usize {
        MAX_FRAME
    }
}
