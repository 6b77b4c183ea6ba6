"""`infogan explore`: a local web page that turns a trained model's codes and shows the images.

The names of codes and their values come from `infogan.evaluation.labels`; the server (`app`,
`server`) needs the `explore` extra: pip install 'infogan[explore]'.
"""
