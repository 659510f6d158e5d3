//! Per-recipient lanes: one recipient's notifications are handled strictly in
//! the order they were read, while different recipients proceed at once.

use std::collections::{HashMap, VecDeque};

/// Work waiting per recipient. The head of a lane is the one being handled;
/// the rest wait for it.
#[derive(Debug)]
pub struct Lanes<T> {
    lanes: HashMap<String, VecDeque<T>>,
    queued: usize,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Lanes {
            lanes: HashMap::new(),
            queued: 0,
        }
    }
}

impl<T: Clone> Lanes<T> {
    /// Adds `item` to the end of `recipient`'s lane. Returns it when the lane
    /// was empty: it is the head, to be handled now.
    pub fn push(&mut self, recipient: &str, item: T) -> Option<T> {
        self.queued += 1;
        let lane = self.lanes.entry(recipient.to_string()).or_default();
        lane.push_back(item);
        (lane.len() == 1).then(|| lane[0].clone())
    }

    /// Marks the head of `recipient`'s lane done. Returns the next item, now
    /// the head, to be handled.
    pub fn finish(&mut self, recipient: &str) -> Option<T> {
        let lane = self.lanes.get_mut(recipient)?;
        lane.pop_front();
        self.queued -= 1;
        match lane.front() {
            Some(next) => Some(next.clone()),
            None => {
                self.lanes.remove(recipient);
                None
            }
        }
    }

    /// Items held, handled or waiting.
    pub fn len(&self) -> usize {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipients_items_go_one_at_a_time_in_order_and_others_do_not_wait() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.push("a", 1), Some(1), "an idle lane starts at once");
        assert_eq!(lanes.push("a", 2), None, "2 waits for 1");
        assert_eq!(
            lanes.push("b", 3),
            Some(3),
            "another recipient does not wait"
        );
        assert_eq!(lanes.push("a", 4), None);
        assert_eq!(lanes.len(), 4);
        assert_eq!(lanes.finish("a"), Some(2));
        assert_eq!(lanes.finish("b"), None);
        assert_eq!(lanes.finish("a"), Some(4));
        assert_eq!(lanes.finish("a"), None);
        assert_eq!(lanes.len(), 0);
        assert_eq!(lanes.push("a", 5), Some(5), "an emptied lane starts again");
    }
}
