use std::cell::RefCell;

struct Registry {
    items: RefCell<Vec<u32>>,
}

impl Registry {
    #[inline(never)]
    fn add_all(&self) {
        let items = self.items.borrow();
        for x in items.iter() {
            self.add(*x + 1);
        }
    }

    #[inline(never)]
    fn add(&self, x: u32) {
        self.items.borrow_mut().push(x);
    }
}

fn main() {
    let r = Registry { items: RefCell::new(vec![1, 2, 3]) };
    r.add_all();
    println!("{:?}", r.items.borrow());
}
