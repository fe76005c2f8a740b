"""Reports: ``results.json``, JUnit XML, a self-contained HTML page, baseline comparison.

    results = make_results(run_id=new_run_id("load"), scenario="load", ...,
                           checks=check_results, slos=slo_verdicts,
                           generator=gen_report.to_dict(),
                           latencies={"generation.corrected": gen_report.latency.corrected},
                           faults=fault_spans(history), timeline=latency_timeline(history))
    run_dir = write_run(results, "reports", history=history)   # reports/<run-id>/, latest
    sys.exit(results.exit_code)

Exit codes: 0 pass, 1 a check or SLO failed, 2 the harness could not judge
(errors, invalid generator, unknown verdicts).
"""

from harness.report.baseline import (
    Comparison,
    FigureComparison,
    compare_results,
    render_comparison_text,
)
from harness.report.html import render_html
from harness.report.junit import slo_message, to_junit_xml
from harness.report.results import (
    SCHEMA_VERSION,
    FaultSpan,
    LatencyMetric,
    ReceiptBucket,
    ResultsFormatError,
    RunResults,
    SelfCheckCell,
    TimelineBucket,
    Verdict,
    make_results,
    overall_verdict,
    read_results,
    write_results,
)
from harness.report.run_dir import LATEST, new_run_id, write_run
from harness.report.timeline import (
    fault_spans,
    latency_timeline,
    receipt_timeline,
    reconnections,
    run_start,
)

__all__ = [
    "LATEST",
    "SCHEMA_VERSION",
    "Comparison",
    "FaultSpan",
    "FigureComparison",
    "LatencyMetric",
    "ReceiptBucket",
    "ResultsFormatError",
    "RunResults",
    "SelfCheckCell",
    "TimelineBucket",
    "Verdict",
    "compare_results",
    "fault_spans",
    "latency_timeline",
    "make_results",
    "new_run_id",
    "overall_verdict",
    "read_results",
    "receipt_timeline",
    "reconnections",
    "render_comparison_text",
    "render_html",
    "run_start",
    "slo_message",
    "to_junit_xml",
    "write_results",
    "write_run",
]
