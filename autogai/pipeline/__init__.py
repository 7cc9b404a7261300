"""pipeline layer: the design loop (propose -> validate -> evaluate -> rank -> feed back), the run
directory, resume, ranking statistics, feedback and the HTML report.

- :func:`autogai.pipeline.loop.run_search` is the library call behind ``autogai search``.
"""
