//! A fixed-size ring buffer that overwrites its oldest element when full.

pub struct RingBuffer<T> {
    items: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T> RingBuffer<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring buffer needs room for one element");
        let mut items = Vec::with_capacity(capacity);
        items.resize_with(capacity, || None);
        RingBuffer { items, head: 0, len: 0 }
    }

    pub fn push(&mut self, value: T) -> Option<T> {
        let capacity = self.items.len();
        let slot = (self.head + self.len) % capacity;
        if self.len == capacity {
            let old = self.items[self.head].replace(value);
            self.head = (self.head + 1) % capacity;
            return old;
        }
        self.items[slot] = Some(value);
        self.len += 1;
        None
    }

    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.items[self.head].take();
        self.head = (self.head + 1) % self.items.len();
        self.len -= 1;
        value
    }

    pub fn len(&self) -> usize {
        self.len
    }
}
