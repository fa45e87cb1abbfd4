trait Shape {
    fn area(&self) -> f64;
}

struct Square(f64);
struct Broken(u32);

impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

impl Shape for Broken {
    #[inline(never)]
    fn area(&self) -> f64 {
        panic!("shape {} has no area", self.0)
    }
}

#[inline(never)]
fn total(shapes: &[Box<dyn Shape>]) -> f64 {
    shapes.iter().map(|s| s.area()).sum()
}

fn main() {
    let shapes: Vec<Box<dyn Shape>> = vec![Box::new(Square(2.0)), Box::new(Broken(17))];
    println!("total = {}", total(&shapes));
}
