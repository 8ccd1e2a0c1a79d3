//! [`Shared`]: the `Arc` the graph's records travel in, compared pointer first.
//!
//! Arrangements compare a record with its own copies all the time: merging the batches that hold
//! a record's insertion and later its retraction, or reading a key across batches. Those copies
//! are clones of one `Arc`, so comparing pointers first answers "equal" at once, where comparing
//! contents would walk a whole killmail, summary piece or battle report. Records that are not
//! the same allocation are compared by content, so the order is the contents' order.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A shared, immutable record of the graph.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shared<T>(pub Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: Ord> PartialOrd for Shared<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Shared<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_content_and_equals_itself() {
        let a = Shared::new(vec![1, 2, 3]);
        let b = Shared::new(vec![1, 2, 4]);
        let a2 = Shared::new(vec![1, 2, 3]);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
        assert_eq!(a.cmp(&a2), Ordering::Equal);
        assert_eq!(a, a2);
        assert_eq!(a.cmp(&b), Ordering::Less);
        assert_eq!(b.cmp(&a), Ordering::Greater);
        assert_ne!(a, b);
    }
}
