//! The queue model and `QueueStore` contract, re-exported from `wharf_store::queue` where they
//! live beside the SQL implementation (so `wharf_outbound::queue::…` paths keep working).

pub use wharf_store::queue::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reexported_memory_queue_meets_the_contract() {
        check_queue_store(&MemoryQueue::new()).await.unwrap();
    }
}
