//! A bounded set of recently seen ids: enough to recognise a notification
//! that comes again after a reconnect, without growing for ever.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Recent {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds `id`; returns false if it was there already.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_remembers_the_most_recent_ids_only() {
        let mut recent = Recent::new(2);
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"), "a again");
        assert!(recent.insert("b"));
        assert!(recent.insert("c"), "a is forgotten to make room");
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
    }
}
