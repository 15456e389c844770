fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (records, _) = kir_audit::read_all(&bytes, &Default::default());
    let mut merger = kir_audit::StageMerger::default();
    let mut events = Vec::new();
    for r in records {
        if let kir_audit::Record::Audit(e) = r {
            merger.push(e, &mut events);
        }
    }
    merger.finish(&mut events);
    let set = kir_detect::RuleSet::builtin(&Default::default());
    for _ in 0..25 {
        let t = std::time::Instant::now();
        let mut hits = Vec::new();
        for e in &events {
            set.matching(e, &mut hits);
        }
        println!("matching {:.3}s for {} events ({} hits)", t.elapsed().as_secs_f64(), events.len(), hits.len());
    }
}
